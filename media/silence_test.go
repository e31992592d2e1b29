package media

import (
	"bytes"
	"math"
	"testing"
)

func TestSilencePacket(t *testing.T) {
	pkt, err := SilencePacket()
	if err != nil {
		t.Fatal(err)
	}
	// TOC (RFC 6716 §3.1): one mono frame of 20 ms.
	toc := pkt[0]
	if toc&0x03 != 0 || toc&0x04 != 0 {
		t.Errorf("TOC %#x: want one frame (code 0), mono", toc)
	}
	if got := opusFrameMs(toc); got != 20 {
		t.Errorf("TOC %#x: frame of %v ms, want 20", toc, got)
	}

	pkt[0] ^= 0xff
	again, err := SilencePacket()
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != toc {
		t.Fatal("changing a returned packet changed the cached one")
	}

	// Alone, and after a tone: the decoder must settle to silence within
	// two frames of the tone (the tail of its SILK and CELT state), and
	// stay there.
	_, file := transcodeTone(t, 0.5, 1000)
	tonePkts, _, _ := readOgg(t, file)
	for _, c := range []struct {
		name   string
		before [][]byte
		settle int // frames
	}{{"alone", nil, 0}, {"after a tone", tonePkts, 2}} {
		seq := append([][]byte(nil), c.before...)
		for range 50 {
			seq = append(seq, again)
		}
		pcm, err := DecodePackets(seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(pcm) != len(seq)*960 {
			t.Fatalf("%s: decoded %d samples, want %d", c.name, len(pcm), len(seq)*960)
		}
		settled := pcm[(len(c.before)+c.settle)*960:]
		peak := 0
		for _, v := range settled {
			peak = max(peak, int(math.Abs(float64(v))))
		}
		if peak > 3 { // -80 dBFS
			t.Errorf("%s: silence decodes with peaks of %d", c.name, peak)
		}
	}
	if !bytes.Equal(again, mustSilence(t)) {
		t.Error("SilencePacket is not the same packet on every call")
	}
}

func mustSilence(t testing.TB) []byte {
	t.Helper()
	p, err := SilencePacket()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// opusFrameMs is the frame duration a TOC byte's configuration gives.
func opusFrameMs(toc byte) float64 {
	config := int(toc >> 3)
	switch {
	case config < 12: // SILK: 10, 20, 40, 60
		return []float64{10, 20, 40, 60}[config%4]
	case config < 16: // hybrid: 10, 20
		return []float64{10, 20}[config%2]
	default: // CELT: 2.5, 5, 10, 20
		return []float64{2.5, 5, 10, 20}[config%4]
	}
}
