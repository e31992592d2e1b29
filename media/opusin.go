package media

import (
	"io"
	"math"

	"github.com/hraban/opus"
	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// opusSource decodes an uploaded Ogg Opus file with our demuxer and
// libopus, honouring pre-skip, output gain and end trimming (RFC 7845 §4).
type opusSource struct {
	pr   *PacketReader
	dec  *opus.Decoder
	ch   int
	gain float32
	pos  int64 // granule position reached: samples decoded, pre-skip included
	pcm  []float32
	out  []float32 // decoded samples not yet returned
	n    int       // packets decoded
}

func newOpusSource(r io.Reader) (*opusSource, error) {
	pr, err := NewPacketReader(r)
	if err != nil {
		return nil, err
	}
	dec, err := opus.NewDecoder(protocol.ClockRate, pr.channels)
	if err != nil {
		return nil, loa.Errorf(loa.EINTERNAL, "cannot create Opus decoder: %v", err)
	}
	return &opusSource{
		pr:   pr,
		dec:  dec,
		ch:   pr.channels,
		gain: float32(math.Pow(10, float64(pr.gainQ8)/(20*256))),
		pcm:  make([]float32, maxFrameSamples*pr.channels),
	}, nil
}

func (s *opusSource) rate() int     { return protocol.ClockRate }
func (s *opusSource) channels() int { return s.ch }

func (s *opusSource) read(p []float32) (int, error) {
	for len(s.out) == 0 {
		pkt, err := s.pr.Next()
		if err != nil {
			return 0, err
		}
		if len(pkt) == 0 {
			return 0, loa.Errorf(loa.EINVALID, "Ogg Opus file is corrupt: audio packet %d is empty", s.n)
		}
		n, err := s.dec.DecodeFloat32(pkt, s.pcm)
		if err != nil {
			return 0, loa.Errorf(loa.EINVALID, "Ogg Opus file is corrupt: audio packet %d cannot be decoded: %v", s.n, err)
		}
		s.n++
		// Keep the part of [pos, pos+n) after the pre-skip and, on the
		// last page, before its granule position.
		from, to := s.pos, s.pos+int64(n)
		s.pos = to
		from = max(from, int64(s.pr.preSkip))
		if end, last := s.pr.endGranule(); last && end >= 0 {
			to = min(to, end)
		}
		if to <= from {
			continue
		}
		a, b := int(from-(s.pos-int64(n))), int(to-(s.pos-int64(n)))
		s.out = s.pcm[a*s.ch : b*s.ch]
	}
	m := copy(p[:len(p)-len(p)%s.ch], s.out)
	s.out = s.out[m:]
	for i := range m {
		p[i] = sanitize(p[i] * s.gain)
	}
	return m / s.ch, nil
}
