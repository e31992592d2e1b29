package live

import (
	"fmt"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa/protocol"
)

// Receivers' profile (protocol/CONTRACT.md): what the uplink's Opus must be
// to be forwarded as it is.
const (
	bitrate = 32000
	// OpusFmtp is the answer's fmtp: 48 kHz mono at ~32 kbit/s with in-band
	// FEC and no DTX, the receivers' profile, so a browser's packets can be
	// forwarded without decoding.
	OpusFmtp = "minptime=10;useinbandfec=1;usedtx=0;stereo=0;sprop-stereo=0;maxaveragebitrate=32000;maxplaybackrate=48000"
)

// forwardable reports whether an Opus packet can go to receivers as it is:
// mono, one 20 ms frame's worth of audio (RFC 6716 §3.1 TOC byte).
func forwardable(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	d, ok := packetDuration(p)
	return ok && d == protocol.FrameSamples && p[0]&0x04 == 0
}

// packetDuration is the audio in an Opus packet, in 48 kHz samples.
func packetDuration(p []byte) (int, bool) {
	if len(p) == 0 {
		return 0, false
	}
	config := int(p[0] >> 3)
	var frame int // samples at 48 kHz, ×2 so 2.5 ms is whole
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[config%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[config%4]
	}
	switch p[0] & 3 {
	case 0:
		return frame, true
	case 1, 2:
		return 2 * frame, true
	default:
		if len(p) < 2 {
			return 0, false
		}
		return int(p[1]&0x3f) * frame, true
	}
}

// transcoder decodes what cannot be forwarded (stereo, other frame
// durations) and encodes it again as the receivers' 20 ms mono frames.
type transcoder struct {
	dec  *opus.Decoder
	enc  *opus.Encoder
	pcm  []int16 // decoded, not yet encoded
	tmp  []int16
	loss int
}

func newTranscoder() (*transcoder, error) {
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		return nil, fmt.Errorf("live: opus decoder: %w", err)
	}
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("live: opus encoder: %w", err)
	}
	for _, err := range []error{enc.SetBitrate(bitrate), enc.SetInBandFEC(true), enc.SetDTX(false), enc.SetPacketLossPerc(5)} {
		if err != nil {
			return nil, fmt.Errorf("live: opus encoder: %w", err)
		}
	}
	return &transcoder{dec: dec, enc: enc, tmp: make([]int16, 120*48)}, nil
}

// setLoss tells the encoder the loss receivers report (percent), for its FEC.
func (t *transcoder) setLoss(pct int) {
	if pct != t.loss {
		t.loss = pct
		t.enc.SetPacketLossPerc(pct)
	}
}

// add decodes an uplink packet and returns the 20 ms frames now complete.
func (t *transcoder) add(p []byte) ([][]byte, error) {
	n, err := t.dec.Decode(p, t.tmp)
	if err != nil {
		return nil, fmt.Errorf("live: decode: %w", err)
	}
	t.pcm = append(t.pcm, t.tmp[:n]...)
	var out [][]byte
	for len(t.pcm) >= protocol.FrameSamples {
		buf := make([]byte, 1275)
		k, err := t.enc.Encode(t.pcm[:protocol.FrameSamples], buf)
		if err != nil {
			return out, fmt.Errorf("live: encode: %w", err)
		}
		out = append(out, buf[:k])
		t.pcm = t.pcm[protocol.FrameSamples:]
	}
	return out, nil
}
