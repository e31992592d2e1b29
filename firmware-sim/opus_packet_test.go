package firmwaresim

import (
	"testing"

	"github.com/loa-broadcast/loa/protocol"
)

func TestOpusPacketSamples(t *testing.T) {
	for _, c := range []struct {
		name string
		p    []byte
		want int // 0: invalid
	}{
		{"empty", nil, 0},
		{"celt 20ms", []byte{31 << 3, 1, 2, 3}, 960},
		{"silk 20ms", []byte{1 << 3, 9}, 960},
		{"silk 60ms", []byte{3 << 3, 9}, 2880},
		{"hybrid 10ms", []byte{12 << 3, 9}, 480},
		{"celt 2.5ms", []byte{16 << 3}, 120},
		{"code 1 two 10ms", []byte{30<<3 | 1, 1, 2}, 960},
		{"code 1 odd", []byte{30<<3 | 1, 1, 2, 3}, 0},
		{"code 2", []byte{30<<3 | 2, 2, 1, 1, 5}, 960},
		{"code 2 beyond", []byte{30<<3 | 2, 9, 1}, 0},
		{"code 2 two-byte length beyond", []byte{30<<3 | 2, 252, 1, 0}, 0},
		{"code 3 no frames", []byte{31<<3 | 3, 0}, 0},
		{"code 3 short", []byte{31<<3 | 3}, 0},
		{"code 3 four 5ms", []byte{17<<3 | 3, 4, 0}, 960},
		{"code 3 over 120ms", []byte{3<<3 | 3, 3}, 0},
		{"too long", append([]byte{31 << 3}, make([]byte, 1276)...), 0},
	} {
		got, err := opusPacketSamples(c.p)
		if c.want == 0 && err == nil {
			t.Errorf("%s: accepted as %d samples", c.name, got)
		}
		if c.want != 0 && (err != nil || got != c.want) {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	for i, p := range toneFrames(t, 5) {
		if n, err := opusPacketSamples(p); err != nil || n != protocol.FrameSamples {
			t.Errorf("encoder frame %d: %d, %v", i, n, err)
		}
	}
}

func FuzzOpusPacketSamples(f *testing.F) {
	f.Add([]byte{31<<3 | 2, 252, 1, 0})
	f.Add([]byte{17<<3 | 3, 4, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		if n, err := opusPacketSamples(p); err == nil && (n <= 0 || n > 5760) {
			t.Fatalf("%x: %d samples", p, n)
		}
	})
}
