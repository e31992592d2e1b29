package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/loa-broadcast/loa"
)

const (
	wavPCM        = 1
	wavFloat      = 3
	wavALaw       = 6
	wavMuLaw      = 7
	wavExtensible = 0xfffe
	wavMaxChans   = 8
)

// wavSource streams the samples of a RIFF/WAVE file's data chunk.
type wavSource struct {
	r      io.Reader
	format int
	bits   int
	ch     int
	sr     int
	block  int   // bytes per sample frame
	left   int64 // bytes of whole frames still to read; <0 means until EOF
	buf    []byte
	frames int64 // whole frames in the data chunk, or -1 if unknown
	data   int64 // byte offset of the first sample
	pos    int64 // sample frames read so far
}

func (s *wavSource) rate() int     { return s.sr }
func (s *wavSource) channels() int { return s.ch }

// parseWAV reads the WAV header from r, which holds size bytes, and leaves
// r at the start of the samples.
func parseWAV(r io.Reader, size int64) (*wavSource, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	read := func(p []byte, what string) error {
		n, err := io.ReadFull(br, p)
		off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return loa.Errorf(loa.EINVALID, "WAV file is truncated: it ends at byte %d, inside the %s", off, what)
		}
		return err
	}
	var riff [12]byte
	if err := read(riff[:], "RIFF header"); err != nil {
		return nil, err
	}
	switch string(riff[:4]) {
	case "RIFF":
	case "RIFX":
		return nil, loa.Errorf(loa.EUNSUPPORTED, "big-endian WAV (RIFX) is not supported; export as ordinary little-endian WAV")
	case "RF64":
		return nil, loa.Errorf(loa.EUNSUPPORTED, "RF64 WAV is not supported; export as ordinary WAV")
	default:
		return nil, loa.Errorf(loa.EINVALID, "not a WAV file: it does not start with RIFF")
	}
	if string(riff[8:12]) != "WAVE" {
		return nil, loa.Errorf(loa.EINVALID, "not a WAV file: RIFF type is %q, not WAVE", riff[8:12])
	}
	s := &wavSource{}
	haveFmt := false
	for {
		var ch [8]byte
		if err := read(ch[:], "chunk list before the data chunk"); err != nil {
			return nil, err
		}
		id := string(ch[:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if n < 16 || n > 1024 {
				return nil, loa.Errorf(loa.EINVALID, "WAV file is corrupt: fmt chunk at byte %d has size %d", off-8, n)
			}
			b := make([]byte, n+n&1)
			if err := read(b, "fmt chunk"); err != nil {
				return nil, err
			}
			if err := s.parseFmt(b[:n]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, loa.Errorf(loa.EINVALID, "WAV file is corrupt: the data chunk at byte %d comes before any fmt chunk", off-8)
			}
			s.left = n - n%int64(s.block)
			s.frames = n / int64(s.block)
			if n == 0xffffffff {
				// Written by a streaming encoder that could not go back
				// to fill in the size: the samples run to the end.
				s.left, s.frames = -1, (size-off)/int64(s.block)
			} else if avail := size - off; n > avail {
				return nil, loa.Errorf(loa.EINVALID, "WAV file is truncated: the data chunk at byte %d declares %d bytes but only %d are present", off-8, n, avail)
			}
			s.r = br
			s.data = off
			s.buf = make([]byte, chunkFrames*s.block)
			return s, nil
		default:
			// LIST, fact, bext, cue, ...: skip, with the RIFF pad byte.
			skip := n + n&1
			m, err := br.Discard(int(min(skip, math.MaxInt32)))
			off += int64(m)
			if err != nil || int64(m) != skip {
				return nil, loa.Errorf(loa.EINVALID, "WAV file is truncated: it ends at byte %d, inside the %q chunk, before any audio data", off, id)
			}
		}
	}
}

func (s *wavSource) parseFmt(b []byte) error {
	le := binary.LittleEndian
	s.format = int(le.Uint16(b[0:]))
	s.ch = int(le.Uint16(b[2:]))
	s.sr = int(le.Uint32(b[4:]))
	s.block = int(le.Uint16(b[12:]))
	s.bits = int(le.Uint16(b[14:]))
	if s.format == wavExtensible {
		if len(b) < 40 {
			return loa.Errorf(loa.EINVALID, "WAV file is corrupt: extensible fmt chunk is %d bytes, not 40", len(b))
		}
		s.format = int(le.Uint16(b[24:])) // first two bytes of the sub-format GUID
	}
	switch s.format {
	case wavPCM:
		switch s.bits {
		case 16, 24, 32:
		case 8:
			return loa.Errorf(loa.EUNSUPPORTED, "8-bit WAV is not supported; export as 16-bit or 24-bit WAV")
		default:
			return loa.Errorf(loa.EUNSUPPORTED, "%d-bit PCM WAV is not supported; export as 16-bit or 24-bit WAV", s.bits)
		}
	case wavFloat:
		if s.bits != 32 && s.bits != 64 {
			return loa.Errorf(loa.EUNSUPPORTED, "%d-bit float WAV is not supported (32 and 64-bit are)", s.bits)
		}
	case wavALaw, wavMuLaw:
		return loa.Errorf(loa.EUNSUPPORTED, "A-law/µ-law WAV is not supported; export as 16-bit PCM WAV")
	default:
		return loa.Errorf(loa.EUNSUPPORTED, "WAV encoding 0x%04x is not supported (PCM 16/24/32-bit and float are)", s.format)
	}
	if s.ch < 1 || s.ch > wavMaxChans {
		return loa.Errorf(loa.EUNSUPPORTED, "WAV with %d channels is not supported (1 to %d are)", s.ch, wavMaxChans)
	}
	if want := s.ch * s.bits / 8; s.block != want {
		return loa.Errorf(loa.EINVALID, "WAV file is corrupt: block align is %d, but %d channels of %d bits need %d", s.block, s.ch, s.bits, want)
	}
	if err := checkRate(s.sr); err != nil {
		return err
	}
	return nil
}

func (s *wavSource) read(p []float32) (int, error) {
	frames := len(p) / s.ch
	want := int64(frames * s.block)
	if s.left >= 0 {
		if s.left == 0 {
			return 0, io.EOF
		}
		want = min(want, s.left)
	}
	b := s.buf[:want]
	n, err := io.ReadFull(s.r, b)
	if s.left >= 0 {
		s.left -= int64(n)
	}
	n -= n % s.block
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && s.left > 0) {
		if s.left < 0 {
			err = nil // streamed WAV: a partial last frame is just dropped
		} else {
			return 0, loa.Errorf(loa.EINVALID, "WAV file is truncated inside its audio data")
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("media: read WAV: %w", err)
	}
	b = b[:n]
	m := n / (s.bits / 8)
	le := binary.LittleEndian
	switch {
	case s.format == wavPCM && s.bits == 16:
		for i := range m {
			p[i] = float32(int16(le.Uint16(b[2*i:]))) / (1 << 15)
		}
	case s.format == wavPCM && s.bits == 24:
		for i := range m {
			v := int32(uint32(b[3*i])<<8|uint32(b[3*i+1])<<16|uint32(b[3*i+2])<<24) >> 8
			p[i] = float32(v) / (1 << 23)
		}
	case s.format == wavPCM && s.bits == 32:
		for i := range m {
			p[i] = float32(float64(int32(le.Uint32(b[4*i:]))) / (1 << 31))
		}
	case s.bits == 32:
		for i := range m {
			v := float64(math.Float32frombits(le.Uint32(b[4*i:])))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, s.notFinite(i, v)
			}
			p[i] = clamp(float32(v))
		}
	default:
		for i := range m {
			v := math.Float64frombits(le.Uint64(b[8*i:]))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, s.notFinite(i, v)
			}
			p[i] = clamp(float32(v))
		}
	}
	frames = m / s.ch
	s.pos += int64(frames)
	if frames == 0 && err != nil {
		return 0, io.EOF
	}
	return frames, nil
}

// notFinite is the error for a NaN or infinite float sample, the i-th of
// the chunk just read: such a file is damaged, and playing it as full
// scale (or as silence) would hide that.
func (s *wavSource) notFinite(i int, v float64) error {
	frame := s.pos + int64(i/s.ch)
	return loa.Errorf(loa.EINVALID, "WAV file is corrupt: sample %d (channel %d, at %.3f s, byte %d) is %v; float samples must be finite numbers",
		frame, i%s.ch+1, float64(frame)/float64(s.sr), s.data+frame*int64(s.block)+int64(i%s.ch*s.bits/8), v)
}

// clamp holds finite float samples within full scale (float WAV may
// exceed it).
func clamp(v float32) float32 {
	switch {
	case v > 1:
		return 1
	case v < -1:
		return -1
	}
	return v
}

// sanitize clamps decoded samples, mapping NaN to silence: a decoder's
// output must never poison the loudness measurement or the encoder.
func sanitize(v float32) float32 {
	if v != v {
		return 0
	}
	return clamp(v)
}

// EncodeWAV writes pcm (interleaved if channels > 1) as a 16-bit PCM WAV.
func EncodeWAV(w io.Writer, pcm []int16, rate, channels int) error {
	if channels < 1 || channels > 0xffff {
		return loa.Errorf(loa.EINVALID, "WAV channel count %d is out of range", channels)
	}
	if rate < 1 || rate > math.MaxInt32/(2*channels) {
		return loa.Errorf(loa.EINVALID, "WAV sample rate %d is out of range", rate)
	}
	if len(pcm)%channels != 0 {
		return loa.Errorf(loa.EINVALID, "%d samples do not divide into %d channels", len(pcm), channels)
	}
	data := int64(len(pcm)) * 2
	if data > math.MaxUint32-36 {
		return loa.Errorf(loa.ETOOLARGE, "%d samples do not fit in a WAV file", len(pcm))
	}
	bw := bufio.NewWriter(w)
	le := binary.LittleEndian
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = le.AppendUint32(h, uint32(36+data))
	h = append(h, "WAVEfmt "...)
	h = le.AppendUint32(h, 16)
	h = le.AppendUint16(h, wavPCM)
	h = le.AppendUint16(h, uint16(channels))
	h = le.AppendUint32(h, uint32(rate))
	h = le.AppendUint32(h, uint32(rate*channels*2))
	h = le.AppendUint16(h, uint16(channels*2))
	h = le.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = le.AppendUint32(h, uint32(data))
	bw.Write(h)
	var b [2]byte
	for _, v := range pcm {
		le.PutUint16(b[:], uint16(v))
		bw.Write(b[:])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("media: write WAV: %w", err)
	}
	return nil
}
