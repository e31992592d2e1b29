package media

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/hajimehoshi/go-mp3"

	"github.com/loa-broadcast/loa"
)

// mp3DecoderDelay is the delay of the standard MPEG layer III synthesis
// filterbank, which LAME's encoder-delay field does not include.
const mp3DecoderDelay = 529

// mp3Source decodes MP3 with go-mp3, which always yields 16-bit stereo at
// the file's rate. When a Xing/Info frame with a LAME tag says how much
// encoder delay and padding there is, it trims both (gapless decoding), so
// the result lasts as long as the original.
type mp3Source struct {
	d     *mp3.Decoder
	sr    int
	skip  int // samples still to drop from the start
	tail  int // samples to drop from the end
	held  []float32
	buf   []byte
	eof   bool
	total int64
}

func newMP3Source(r io.ReaderAt, size int64) (s *mp3Source, err error) {
	defer recoverDecoder("MP3", &err)
	start, err := skipID3(r, size)
	if err != nil {
		return nil, err
	}
	g := mp3Gapless(r, start)
	// Start go-mp3 past the ID3 tags: it allocates whatever size a tag
	// header claims, up to 4 GiB. Hide Seek so it does not scan the whole
	// file up front either.
	d, err := mp3.NewDecoder(struct{ io.Reader }{io.NewSectionReader(r, start, size-start)})
	if err != nil {
		return nil, loa.Errorf(loa.EINVALID, "MP3 file is corrupt: %v", err)
	}
	s = &mp3Source{d: d, sr: d.SampleRate(), buf: make([]byte, chunkFrames*4)}
	if err := checkRate(s.sr); err != nil {
		return nil, err
	}
	if g.ok {
		s.skip = g.frameSamples + g.delay + mp3DecoderDelay
		s.tail = max(0, g.padding-mp3DecoderDelay)
	}
	return s, nil
}

func (s *mp3Source) rate() int     { return s.sr }
func (s *mp3Source) channels() int { return 2 }

func (s *mp3Source) read(p []float32) (n int, err error) {
	defer recoverDecoder("MP3", &err)
	// Keep s.tail samples back until the end is known, then drop them.
	for len(s.held) < len(p)+2*s.tail && !s.eof {
		m, err := s.d.Read(s.buf)
		m -= m % 4
		for i := 0; i < m; i += 2 {
			v := float32(int16(binary.LittleEndian.Uint16(s.buf[i:]))) / (1 << 15)
			if s.skip > 0 {
				if i%4 == 2 {
					s.skip--
				}
				continue
			}
			s.held = append(s.held, v)
		}
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else if err != nil {
			return 0, loa.Errorf(loa.EINVALID, "MP3 file is corrupt after %.1f s of audio: %v", float64(s.total)/float64(s.sr), err)
		}
	}
	avail := len(s.held) - 2*s.tail
	if avail <= 0 {
		if s.eof {
			return 0, io.EOF
		}
		return 0, nil
	}
	n = copy(p, s.held[:avail])
	s.held = s.held[:copy(s.held, s.held[n:])]
	s.total += int64(n / 2)
	return n / 2, nil
}

// recoverDecoder turns a panic inside a third-party decoder, fed bytes
// from an upload, into an EINVALID error instead of a crashed daemon.
func recoverDecoder(format string, err *error) {
	if v := recover(); v != nil {
		*err = loa.Errorf(loa.EINVALID, "%s file is corrupt (the decoder failed: %v)", format, v)
	}
}

type gapless struct {
	ok             bool
	frameSamples   int // samples the Xing frame itself decodes to
	delay, padding int
}

// skipID3 returns the offset past the ID3v2 tags at the start of an MP3
// file, checking that each fits in the file.
func skipID3(r io.ReaderAt, size int64) (int64, error) {
	var off int64
	for {
		var h [10]byte
		if n, _ := r.ReadAt(h[:], off); n < 10 || string(h[:3]) != "ID3" {
			if n >= 3 && string(h[:3]) == "ID3" {
				return 0, loa.Errorf(loa.EINVALID, "MP3 file is truncated inside the ID3 tag at byte %d", off)
			}
			return off, nil
		}
		if h[6]|h[7]|h[8]|h[9] >= 0x80 {
			return 0, loa.Errorf(loa.EINVALID, "MP3 file is corrupt: the ID3 tag at byte %d has an invalid size", off)
		}
		n := 10 + (int64(h[6])<<21 | int64(h[7])<<14 | int64(h[8])<<7 | int64(h[9]))
		if h[5]&0x10 != 0 {
			n += 10 // footer
		}
		if off+n > size {
			return 0, loa.Errorf(loa.EINVALID, "MP3 file is truncated: the ID3 tag at byte %d claims %d bytes, past the end of the file at %d", off, n, size)
		}
		off += n
	}
}

// mp3Gapless reads the encoder delay and padding from the LAME tag in the
// Xing/Info frame that starts most encoders' MP3 files, at off.
func mp3Gapless(r io.ReaderAt, off int64) gapless {
	buf := make([]byte, 512)
	n, _ := r.ReadAt(buf, off)
	b := buf[:n]
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 || (b[1]>>1)&3 != 1 {
		return gapless{}
	}
	mpeg1 := (b[1]>>3)&3 == 3
	mono := b[3]>>6 == 3
	side := map[[2]bool]int{{true, true}: 17, {true, false}: 32, {false, true}: 9, {false, false}: 17}[[2]bool{mpeg1, mono}]
	x := 4 + side
	if len(b) < x+8 || (string(b[x:x+4]) != "Xing" && string(b[x:x+4]) != "Info") {
		return gapless{}
	}
	flags := binary.BigEndian.Uint32(b[x+4:])
	l := x + 8
	for _, f := range []struct {
		bit  uint32
		size int
	}{{1, 4}, {2, 4}, {4, 100}, {8, 4}} {
		if flags&f.bit != 0 {
			l += f.size
		}
	}
	// LAME tag: 9-byte encoder name, then 12 bytes, then delay and
	// padding as two 12-bit numbers.
	if len(b) < l+24 {
		return gapless{}
	}
	for _, c := range b[l : l+4] {
		if c < 0x20 || c > 0x7e {
			return gapless{}
		}
	}
	d := b[l+21:]
	g := gapless{ok: true, frameSamples: 1152}
	if !mpeg1 {
		g.frameSamples = 576
	}
	g.delay = int(d[0])<<4 | int(d[1])>>4
	g.padding = int(d[1]&0x0f)<<8 | int(d[2])
	return g
}
