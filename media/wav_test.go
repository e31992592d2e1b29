package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"testing"

	"github.com/loa-broadcast/loa"
)

func readAll(t testing.TB, s source) []float32 {
	t.Helper()
	var out []float32
	buf := make([]float32, 1000*s.channels())
	for {
		n, err := s.read(buf)
		out = append(out, buf[:n*s.channels()]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWAVFormats(t *testing.T) {
	x := tone(8000, 2, 0.3, 440, 0.7)
	for _, bits := range []int{16, 24, 32, -32, -64} {
		in := wavFile(t, x, 8000, 2, bits)
		s, err := parseWAV(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			t.Fatalf("%d bits: %v", bits, err)
		}
		if s.rate() != 8000 || s.channels() != 2 || s.frames != int64(len(x)/2) {
			t.Errorf("%d bits: rate %d channels %d frames %d", bits, s.rate(), s.channels(), s.frames)
		}
		got := readAll(t, s)
		if len(got) != len(x) {
			t.Fatalf("%d bits: %d samples, want %d", bits, len(got), len(x))
		}
		tol := 1.0 / (1 << 14)
		for i := range got {
			if math.Abs(float64(got[i])-x[i]) > tol {
				t.Fatalf("%d bits: sample %d = %v, want %v", bits, i, got[i], x[i])
			}
		}
	}
}

func TestEncodeWAV(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234}
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, pcm, 16000, 2); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) != 44+12 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint32(b[4:]) != uint32(len(b)-8) {
		t.Fatalf("bad header: % x", b[:12])
	}
	s, err := parseWAV(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s)
	for i, v := range pcm {
		if int16(got[i]*32768) != v {
			t.Errorf("sample %d: %v, want %d", i, got[i]*32768, v)
		}
	}
	for _, bad := range []struct{ rate, ch int }{{0, 1}, {8000, 0}, {8000, 4}} {
		if err := EncodeWAV(io.Discard, pcm, bad.rate, bad.ch); err == nil {
			t.Errorf("EncodeWAV(rate %d, channels %d) succeeded", bad.rate, bad.ch)
		}
	}
}

// Real files carry other chunks (odd-sized ones padded), extensible fmt
// chunks, and sometimes an unknown data size from a streaming writer.
func TestWAVVariants(t *testing.T) {
	x := tone(16000, 1, 0.1, 440, 0.5)
	plain := wavFile(t, x, 16000, 1, 16)
	fmtChunk, data := plain[12:36], plain[36:]
	le := binary.LittleEndian
	build := func(chunks ...[]byte) []byte {
		body := append([]byte("WAVE"), bytes.Join(chunks, nil)...)
		return append(le.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
	}
	list := append([]byte("LIST\x03\x00\x00\x00abc"), 0) // odd size, padded
	ext := []byte("fmt ")
	ext = le.AppendUint32(ext, 40)
	ext = le.AppendUint16(ext, wavExtensible)
	ext = append(ext, fmtChunk[10:24]...) // channels .. bits
	ext = le.AppendUint16(ext, 22)
	ext = le.AppendUint16(ext, 16)
	ext = le.AppendUint32(ext, 4)
	ext = append(ext, "\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...)
	streamed := bytes.Clone(data)
	le.PutUint32(streamed[4:], 0xffffffff)
	for name, in := range map[string][]byte{
		"LIST first":  build(list, fmtChunk, data),
		"extensible":  build(ext, data),
		"streamed":    build(fmtChunk, streamed),
		"trailing":    build(fmtChunk, data, list),
		"odd trailer": append(build(fmtChunk, data), 7),
	} {
		s, err := parseWAV(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := readAll(t, s); len(got) != len(x) {
			t.Errorf("%s: %d samples, want %d", name, len(got), len(x))
		}
	}
}

func TestWAVErrors(t *testing.T) {
	good := wavFile(t, tone(16000, 1, 0.1, 440, 0.5), 16000, 1, 16)
	mod := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	for name, c := range map[string]struct {
		in   []byte
		code string
	}{
		"header cut":      {good[:20], loa.EINVALID},
		"data cut":        {good[:100], loa.EINVALID},
		"no WAVE":         {mod(8, 'A', 'V', 'I', ' '), loa.EINVALID},
		"8-bit":           {wavFile(t, []float64{0, 0.5}, 8000, 1, 8), loa.EUNSUPPORTED},
		"a-law":           {mod(20, 6, 0), loa.EUNSUPPORTED},
		"12 bits":         {mod(34, 12, 0), loa.EUNSUPPORTED},
		"bad block align": {mod(32, 3, 0), loa.EINVALID},
		"no channels":     {mod(22, 0, 0), loa.EUNSUPPORTED},
		"rate 0":          {mod(24, 0, 0, 0, 0), loa.EUNSUPPORTED},
		"RIFX":            {mod(0, 'R', 'I', 'F', 'X'), loa.EUNSUPPORTED},
		"data before fmt": {mod(12, 'd', 'a', 't', 'a'), loa.EINVALID},
	} {
		_, err := parseWAV(bytes.NewReader(c.in), int64(len(c.in)))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if loa.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", name, err, c.code)
		}
	}
}

func FuzzWAV(f *testing.F) {
	f.Add(wavFile(f, tone(8000, 1, 0.01, 440, 0.5), 8000, 1, 16))
	f.Add(wavFile(f, tone(44100, 2, 0.01, 440, 0.5), 44100, 2, 24))
	f.Add(wavFile(f, tone(16000, 1, 0.01, 440, 0.5), 16000, 1, -32))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := parseWAV(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			if loa.ErrorCode(err) == loa.EINTERNAL {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		buf := make([]float32, 64*s.channels())
		total := 0
		for {
			n, err := s.read(buf)
			for _, v := range buf[:n*s.channels()] {
				if !(v >= -1 && v <= 1) {
					t.Fatalf("sample %v out of range", v)
				}
			}
			total += n * s.block
			if total > len(in) {
				t.Fatalf("read %d bytes of samples from %d bytes", total, len(in))
			}
			if err != nil {
				return
			}
		}
	})
}
