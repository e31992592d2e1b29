package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"time"

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

// oggDeclaredLength is the length an Ogg Opus file declares: the granule
// position of its last page, less the pre-skip of its OpusHead; 0 when it
// cannot tell (the decoder then finds out). Only the head and the last
// 64 KiB are read, and only a page whose CRC holds counts.
func oggDeclaredLength(r io.ReaderAt, size int64) time.Duration {
	head := make([]byte, oggHeaderLen+255+19)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	if n < oggHeaderLen || n < oggHeaderLen+int(head[26])+19 {
		return 0
	}
	opusHead := head[oggHeaderLen+int(head[26]):]
	if string(opusHead[:8]) != "OpusHead" {
		return 0
	}
	preSkip := int64(binary.LittleEndian.Uint16(opusHead[10:]))
	serial := binary.LittleEndian.Uint32(head[14:])

	// A page is at most 27 + 255 + 255·255 bytes.
	const maxPage = oggHeaderLen + 255 + 255*255
	from := max(0, size-maxPage)
	tail := make([]byte, size-from)
	n, _ = r.ReadAt(tail, from)
	tail = tail[:n]
	for i := bytes.LastIndex(tail, []byte("OggS")); i >= 0; i = bytes.LastIndex(tail[:i], []byte("OggS")) {
		if p := tail[i:]; validPage(p) && binary.LittleEndian.Uint32(p[14:]) == serial {
			g := int64(binary.LittleEndian.Uint64(p[6:]))
			if g < preSkip {
				return 0
			}
			return dur(min(g-preSkip, 1<<40)) // a lying granule must not overflow

		}
	}
	return 0
}

// validPage reports whether p starts with a whole Ogg page whose CRC holds.
func validPage(p []byte) bool {
	if len(p) < oggHeaderLen || p[4] != 0 || len(p) < oggHeaderLen+int(p[26]) {
		return false
	}
	nseg := int(p[26])
	size := oggHeaderLen + nseg
	for _, l := range p[oggHeaderLen : oggHeaderLen+nseg] {
		size += int(l)
	}
	if len(p) < size {
		return false
	}
	page := bytes.Clone(p[:size])
	want := binary.LittleEndian.Uint32(page[22:])
	clear(page[22:26])
	return oggCRC(0, page) == want
}
