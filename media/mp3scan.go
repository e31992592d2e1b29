package media

import (
	"io"
	"time"

	"github.com/loa-broadcast/loa"
)

// mp3Layout is what walking an MP3 file's frame headers tells before any
// decoding: how many frames it has, so how long it lasts.
type mp3Layout struct {
	frames          int64
	samplesPerFrame int
	rate            int
}

func (l mp3Layout) duration() time.Duration {
	if l.rate == 0 {
		return 0
	}
	return time.Duration(l.frames*int64(l.samplesPerFrame)) * time.Second / time.Duration(l.rate)
}

// mp3Header is one parsed MPEG audio layer III frame header.
type mp3Header struct {
	size, rate, samples int
	version             byte // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
}

var (
	mp3Bitrates = [2][16]int{ // kbit/s by bitrate index: MPEG-1, MPEG-2/2.5 layer III
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
	}
	mp3Rates = map[byte][3]int{3: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 0: {11025, 12000, 8000}}
)

// parseMP3Header parses the four bytes of a layer III frame header; ok is
// false for anything else, free-format frames included (nobody decodes
// those).
func parseMP3Header(b []byte) (h mp3Header, ok bool) {
	if len(b) < 4 || !isMP3Frame(b) {
		return h, false
	}
	h.version = (b[1] >> 3) & 3
	table := 1
	h.samples = 576
	if h.version == 3 {
		table, h.samples = 0, 1152
	}
	br := mp3Bitrates[table][b[2]>>4]
	if br == 0 {
		return h, false
	}
	h.rate = mp3Rates[h.version][(b[2]>>2)&3]
	pad := int(b[2]>>1) & 1
	// Layer III: 144 bytes per kbit/s per kHz for MPEG-1, half for 2 and 2.5.
	h.size = (h.samples/8)*br*1000/h.rate + pad
	return h, true
}

// scanMP3 walks the frame headers of the MP3 stream in r from start to
// size, as the decoder will, without decoding: it counts the frames and
// refuses a file whose last frame runs past its end (cut short: the
// decoder would drop the rest silently), naming the byte offsets. Bytes
// between frames are skipped to the next frame of the same stream, as the
// decoder does; trailing ID3v1, APE and Lyrics tags end the walk.
func scanMP3(r io.ReaderAt, start, size int64) (mp3Layout, error) {
	var l mp3Layout
	var first mp3Header
	win := newWindow(r, size)
	pos := start
	for pos < size {
		b := win.at(pos, 10)
		h, ok := parseMP3Header(b)
		if ok && l.frames > 0 && (h.version != first.version || h.rate != first.rate) {
			ok = false // a sync pattern inside damaged data, not a frame of this stream
		}
		if !ok {
			if hasTag(b) {
				break
			}
			next := win.nextSync(pos+1, first)
			if next < 0 {
				break // trailing bytes that hold no frame: the decoder ignores them
			}
			pos = next
			continue
		}
		if pos+int64(h.size) > size {
			return l, loa.Errorf(loa.EINVALID,
				"MP3 file is truncated: frame %d at byte %d needs %d bytes, but the file ends at byte %d (after %v of audio)",
				l.frames+1, pos, h.size, size, mp3Layout{l.frames, h.samples, h.rate}.duration().Round(time.Millisecond))
		}
		if l.frames == 0 {
			first = h
			l.samplesPerFrame, l.rate = h.samples, h.rate
		}
		l.frames++
		pos += int64(h.size)
	}
	if l.frames == 0 {
		return l, loa.Errorf(loa.EINVALID, "MP3 file is corrupt: no complete audio frame from byte %d", start)
	}
	return l, nil
}

// hasTag reports whether b starts a tag that may follow the last frame.
func hasTag(b []byte) bool {
	for _, t := range []string{"TAG", "APETAGEX", "LYRICS", "ID3"} {
		if len(b) >= len(t) && string(b[:len(t)]) == t {
			return true
		}
	}
	return false
}

// window reads an io.ReaderAt in 64 KiB blocks, so walking a file's
// frames costs one read per block rather than one per frame.
type window struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

func newWindow(r io.ReaderAt, size int64) *window {
	return &window{r: r, size: size, buf: make([]byte, 0, 64<<10)}
}

// at returns up to n bytes at pos (fewer only at the end of the file).
func (w *window) at(pos int64, n int) []byte {
	if pos < w.off || pos+int64(n) > w.off+int64(len(w.buf)) {
		m, _ := w.r.ReadAt(w.buf[:cap(w.buf)], pos)
		w.buf, w.off = w.buf[:m], pos
	}
	end := min(int(pos-w.off)+n, len(w.buf))
	return w.buf[pos-w.off : end]
}

// nextSync returns the offset of the next frame header from pos (of the
// same stream as first, once there is one), or -1.
func (w *window) nextSync(pos int64, first mp3Header) int64 {
	for ; pos+4 <= w.size; pos++ {
		b := w.at(pos, 4)
		if b[0] != 0xff {
			continue
		}
		if h, ok := parseMP3Header(b); ok && (first.rate == 0 || (h.version == first.version && h.rate == first.rate)) {
			return pos
		}
	}
	return -1
}
