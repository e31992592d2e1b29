package live

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// rangeDecoder is the start of RFC 6716's range decoder (§4.1), enough to
// read a SILK frame's first flags.
type rangeDecoder struct {
	buf      []byte
	off      int
	rng, val uint32
	rem      int
}

func (d *rangeDecoder) byte() int {
	if d.off < len(d.buf) {
		d.off++
		return int(d.buf[d.off-1])
	}
	return 0
}

func newRangeDecoder(b []byte) *rangeDecoder {
	d := &rangeDecoder{buf: b, rng: 128}
	d.rem = d.byte()
	d.val = d.rng - 1 - uint32(d.rem>>1)
	d.normalize()
	return d
}

func (d *rangeDecoder) normalize() {
	for d.rng <= 1<<23 {
		d.rng <<= 8
		sym := d.rem
		d.rem = d.byte()
		sym = (sym<<8 | d.rem) >> 1
		d.val = ((d.val << 8) + uint32(255&^sym)) & (1<<31 - 1)
	}
}

// bit decodes a binary symbol of probability 1/2^logp.
func (d *rangeDecoder) bit(logp uint) bool {
	s := d.rng >> logp
	one := d.val < s
	if !one {
		d.val -= s
		d.rng -= s
	} else {
		d.rng = s
	}
	d.normalize()
	return one
}

// hasLBRR reports whether a 20 ms mono Opus packet carries in-band FEC
// (SILK LBRR) for the frame before: its SILK layer's LBRR flag, coded
// right after the VAD flag (RFC 6716 §4.2.3). CELT-only packets carry none.
func hasLBRR(p []byte) bool {
	if len(p) < 2 || p[0]>>3 >= 16 || p[0]&3 != 0 {
		return false
	}
	d := newRangeDecoder(p[1:])
	d.bit(1) // VAD
	return d.bit(1)
}

// TestForwardedPacketsCarryFECUnderReceiverLoss: the Receiver Reports
// carry the receivers' loss to the client; a client whose encoder follows
// its reports' fraction lost, as WebRTC's does, adds in-band FEC, and the
// packets forwarded carry it. With no loss reported, they carry none.
func TestForwardedPacketsCarryFECUnderReceiverLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		loss uint8
		want bool
	}{{"no loss", 0, false}, {"receivers lose 20%", 51, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, h, hs := newTestServer(t, Options{Loss: func() uint8 { return tc.loss }})
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			c, err := Dial(ctx, hs.Client(), hs.URL+"/whip", "", "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Hangup()
			if err := c.Connected(ctx); err != nil {
				t.Fatal(err)
			}
			u := h.uplink()
			enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppVoIP)
			if err != nil {
				t.Fatal(err)
			}
			enc.SetBitrate(32000)
			enc.SetInBandFEC(true)
			enc.SetPacketLossPerc(0)
			pcm := make([]int16, protocol.FrameSamples)
			tick := time.NewTicker(protocol.FrameDuration)
			defer tick.Stop()
			reports, withFEC, after := 0, 0, 0
			// Speech-like: a tone with a syllable rhythm, so the encoder
			// stays in its SILK (voice) modes.
			for f := 0; ctx.Err() == nil && after < 100; f++ {
				<-tick.C
				if rrs := c.ReceiverReports(); len(rrs) > reports {
					reports = len(rrs)
					enc.SetPacketLossPerc(lossPercent(rrs[len(rrs)-1].FractionLost))
				}
				for i := range pcm {
					n := f*protocol.FrameSamples + i
					env := 0.5 + 0.5*math.Sin(2*math.Pi*4*float64(n)/protocol.ClockRate)
					pcm[i] = int16(9000 * env * math.Sin(2*math.Pi*220*float64(n)/protocol.ClockRate))
				}
				b := make([]byte, 1275)
				k, err := enc.Encode(pcm, b)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Send(b[:k], false); err != nil {
					t.Fatal(err)
				}
				p, err := u.Next()
				if errors.Is(err, loa.ErrGap) {
					continue
				}
				if reports > 0 { // the encoder knows the reported loss
					after++
					if hasLBRR(p) {
						withFEC++
					}
				}
			}
			t.Logf("%d of %d forwarded packets after the first report carry FEC", withFEC, after)
			if after < 100 {
				t.Fatalf("only %d packets after the first report", after)
			}
			if tc.want && withFEC < after/2 {
				t.Errorf("%d of %d forwarded packets carry FEC under %d/256 reported loss", withFEC, after, tc.loss)
			}
			if !tc.want && withFEC > 0 {
				t.Errorf("%d packets carry FEC with no loss reported", withFEC)
			}
		})
	}
}
