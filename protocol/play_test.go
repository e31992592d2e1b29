package protocol

import (
	"fmt"
	"testing"
)

func TestDecodePlayArgsVolume(t *testing.T) {
	const base = `{"session":"s","addr":"127.0.0.1:5004","ssrc":1,"pt":111,"recv_ssrc":2,"token":"00112233445566778899aabbccddeeff","delay_ms":200,"priority":240%s}`
	for extra, want := range map[string]int{``: 0, `,"volume":0`: 0, `,"volume":1`: 1, `,"volume":100`: 100} {
		p, err := DecodePlayArgs(fmt.Appendf(nil, base, extra))
		if err != nil || p.Volume != want {
			t.Errorf("%q: volume %d, err %v; want %d", extra, p.Volume, err, want)
		}
	}
	for _, extra := range []string{`,"volume":-1`, `,"volume":101`, `,"volume":"loud"`} {
		if _, err := DecodePlayArgs(fmt.Appendf(nil, base, extra)); err == nil {
			t.Errorf("%q: accepted", extra)
		}
	}
}

func TestDecodePlayArgsEndFrame(t *testing.T) {
	const base = `{"session":"s","addr":"127.0.0.1:5004","ssrc":1,"pt":111,"recv_ssrc":2,"token":"00112233445566778899aabbccddeeff","delay_ms":200,"priority":64%s}`
	for extra, want := range map[string]int{``: 0, `,"end_frame":0`: 0, `,"end_frame":1499`: 1499} {
		p, err := DecodePlayArgs(fmt.Appendf(nil, base, extra))
		if err != nil || p.EndFrame != want {
			t.Errorf("%q: end_frame %d, err %v; want %d", extra, p.EndFrame, err, want)
		}
	}
	for _, extra := range []string{`,"end_frame":-1`, `,"end_frame":"last"`, `,"end_frame":1.5`} {
		if _, err := DecodePlayArgs(fmt.Appendf(nil, base, extra)); err == nil {
			t.Errorf("%q: accepted", extra)
		}
	}
}
