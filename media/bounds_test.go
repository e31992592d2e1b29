package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// silentOgg returns an Ogg Opus file of d of silence: one encoded silent
// frame repeated, so hours cost a few MB and no encoding time. If granule
// is not nil it rewrites the last page's granule position (a lying file).
func silentOgg(t testing.TB, d time.Duration, granule func(int64) int64) []byte {
	t.Helper()
	enc, err := newEncoder(6000) // the lowest rate: a silent frame of a few bytes
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, maxPacketBytes)
	n, err := enc.EncodeFloat32(make([]float32, protocol.FrameSamples), pkt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewOggWriter(&buf, 312)
	frames := int(d / protocol.FrameDuration)
	for range frames {
		if err := w.WritePacket(pkt[:n], protocol.FrameSamples); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if granule != nil {
		i := bytes.LastIndex(b, []byte("OggS"))
		page := b[i:]
		g := granule(int64(binary.LittleEndian.Uint64(page[6:])))
		binary.LittleEndian.PutUint64(page[6:], uint64(g))
		clear(page[22:26])
		binary.LittleEndian.PutUint32(page[22:], oggCRC(0, page))
	}
	return b
}

// countingFile is an upload read in place (like an *os.File) that counts
// the bytes the decoders read.
type countingFile struct {
	*io.SectionReader
	read atomic.Int64
}

func newCountingFile(b []byte) *countingFile {
	return &countingFile{SectionReader: io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))}
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.SectionReader.ReadAt(p, off)
	f.read.Add(int64(n))
	return n, err
}

// A few MB of Opus holding 3 h is refused under the default 2 h bound
// before it is decoded: only its head and last page are read.
func TestTranscodeRefusesLongOpusBeforeDecoding(t *testing.T) {
	in := silentOgg(t, 3*time.Hour, nil)
	t.Logf("3 h of silent Ogg Opus: %.1f MB", float64(len(in))/1e6)
	f := newCountingFile(in)
	_, err := Transcode(context.Background(), f, io.Discard, Options{})
	wantCode(t, err, loa.ETOOLARGE)
	for _, s := range []string{"3h0m0s long", "2h0m0s limit"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if got := f.read.Load(); got > int64(len(in))/10 {
		t.Errorf("read %d of %d bytes before refusing; want the head and the tail only", got, len(in))
	}
}

// A file whose last page claims a short length is still stopped at the
// bound while decoding, not decoded to its end.
func TestTranscodeStopsDecodingAtTheBound(t *testing.T) {
	in := silentOgg(t, time.Hour, func(int64) int64 { return 48000 })
	f := newCountingFile(in)
	_, err := Transcode(context.Background(), f, io.Discard, Options{MaxDuration: 3 * time.Minute})
	wantCode(t, err, loa.ETOOLARGE)
	if !strings.Contains(err.Error(), "decoding stopped") {
		t.Errorf("error %q does not say decoding stopped at the limit", err)
	}
	if got := f.read.Load(); got > int64(len(in))/4 {
		t.Errorf("read %d of %d bytes of a file 20× the bound; want about a twentieth", got, len(in))
	}
}

// A float WAV with a NaN or infinite sample is refused with the sample's
// position; today's clamping turned +Inf into a full-scale burst.
func TestTranscodeRefusesNonFiniteWAV(t *testing.T) {
	x := tone(48000, 2, 1, 1000, 0.3)
	for _, c := range []struct {
		name  string
		bits  int
		frame int
		ch    int
		v     float64
		want  string
	}{
		{"NaN float32", -32, 24000, 0, math.NaN(), "sample 24000 (channel 1, at 0.500 s, byte 192044) is NaN"},
		{"+Inf float32", -32, 4800, 1, math.Inf(1), "sample 4800 (channel 2, at 0.100 s, byte 38448) is +Inf"},
		{"-Inf float64", -64, 100, 0, math.Inf(-1), "sample 100 (channel 1, at 0.002 s, byte 1644) is -Inf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := append([]float64(nil), x...)
			y[2*c.frame+c.ch] = c.v
			_, err := Transcode(context.Background(), bytes.NewReader(wavFile(t, y, 48000, 2, c.bits)), io.Discard, Options{})
			wantCode(t, err, loa.EINVALID)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
	// Finite values past full scale are legal in float WAV: clamped.
	y := append([]float64(nil), x...)
	y[1000] = 4
	if _, err := Transcode(context.Background(), bytes.NewReader(wavFile(t, y, 48000, 2, -32)), io.Discard, Options{}); err != nil {
		t.Errorf("a float WAV with a sample at +4.0: %v", err)
	}
}

// An MP3 cut inside a frame is refused naming the frame's byte offset;
// the decoder alone would stop there without a word.
func TestTranscodeRefusesTruncatedMP3(t *testing.T) {
	wav := wavFile(t, tone(44100, 2, 3, 1000, 0.3), 44100, 2, 16)
	mp3 := ffmpegFile(t, wav, "mp3", "-c:a", "libmp3lame", "-b:a", "128k")
	if _, err := Transcode(context.Background(), bytes.NewReader(mp3), io.Discard, Options{}); err != nil {
		t.Fatalf("the whole MP3: %v", err)
	}
	start, err := skipID3(bytes.NewReader(mp3), int64(len(mp3)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := scanMP3(bytes.NewReader(mp3), start, int64(len(mp3)))
	if err != nil {
		t.Fatal(err)
	}
	if d := l.duration(); d < 3*time.Second || d > 3100*time.Millisecond {
		t.Errorf("the frames add up to %v, want 3 s and a frame or two", d)
	}
	// Find the frame holding the byte at 60 % and cut in its middle.
	cut := len(mp3) * 6 / 10
	pos := start
	for {
		h, ok := parseMP3Header(mp3[pos:])
		if !ok {
			t.Fatalf("no frame at byte %d", pos)
		}
		if pos+int64(h.size) > int64(cut) {
			break
		}
		pos += int64(h.size)
	}
	_, err = Transcode(context.Background(), bytes.NewReader(mp3[:cut]), io.Discard, Options{})
	wantCode(t, err, loa.EINVALID)
	want := "truncated: frame "
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), " at byte "+strconv.FormatInt(pos, 10)+" ") ||
		!strings.Contains(err.Error(), "ends at byte "+strconv.Itoa(cut)) {
		t.Errorf("error %q does not name the cut frame at byte %d and the end at %d", err, pos, cut)
	}

	// Tags after the last frame are not a truncation.
	tagged := append(bytes.Clone(mp3), append([]byte("TAG"), make([]byte, 125)...)...)
	if _, err := Transcode(context.Background(), bytes.NewReader(tagged), io.Discard, Options{}); err != nil {
		t.Errorf("an MP3 with an ID3v1 tag: %v", err)
	}
	// Neither is junk that holds no frame.
	junk := append(bytes.Clone(mp3), "\x00\x01\x02 trailing"...)
	if _, err := Transcode(context.Background(), bytes.NewReader(junk), io.Discard, Options{}); err != nil {
		t.Errorf("an MP3 with trailing junk: %v", err)
	}
}

// An MP3 longer than the bound is refused from its frame count, before
// decoding.
func TestTranscodeRefusesLongMP3BeforeDecoding(t *testing.T) {
	wav := wavFile(t, tone(44100, 1, 4, 1000, 0.3), 44100, 1, 16)
	mp3 := ffmpegFile(t, wav, "mp3", "-c:a", "libmp3lame", "-b:a", "64k")
	f := newCountingFile(mp3)
	_, err := Transcode(context.Background(), f, io.Discard, Options{MaxDuration: 2 * time.Second})
	wantCode(t, err, loa.ETOOLARGE)
	if !strings.Contains(err.Error(), "4s long, over the 2s limit") {
		t.Errorf("error %q does not give the length and the limit", err)
	}
	// The frame walk reads the file once; decoding would read it again.
	if got := f.read.Load(); got > int64(len(mp3))+64<<10 {
		t.Errorf("read %d bytes of a %d-byte file", got, len(mp3))
	}
}

func FuzzScanMP3(f *testing.F) {
	f.Add([]byte("\xff\xfb\x90\x64\x00\x00\x00\x00"))
	f.Add(append([]byte("\xff\xfb\x90\x64"), make([]byte, 500)...))
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00TAG"))
	f.Fuzz(func(t *testing.T, in []byte) {
		start, err := skipID3(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		l, err := scanMP3(bytes.NewReader(in), start, int64(len(in)))
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		// The shortest layer III frame is 24 bytes (8 kbit/s at 24 kHz).
		if l.frames < 1 || l.frames*24 > int64(len(in)) {
			t.Fatalf("%d frames in %d bytes", l.frames, len(in))
		}
	})
}
