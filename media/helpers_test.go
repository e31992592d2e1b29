package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/loa-broadcast/loa"
)

// tone returns secs seconds of a sine at freq Hz and peak amplitude amp
// (0..1), interleaved over ch channels.
func tone(rate, ch int, secs, freq, amp float64) []float64 {
	n := int(secs * float64(rate))
	out := make([]float64, n*ch)
	for i := range n {
		v := amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
		for c := range ch {
			out[i*ch+c] = v
		}
	}
	return out
}

func toInt16(x []float64) []int16 {
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = int16(math.Round(max(-1, min(1, v)) * 32767))
	}
	return out
}

// wavFile encodes samples as a WAV of the given PCM format: 8, 16, 24, 32
// (integer) or -32 / -64 (float).
func wavFile(t testing.TB, x []float64, rate, ch, bits int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if bits == 16 {
		if err := EncodeWAV(&buf, toInt16(x), rate, ch); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	format, size := wavPCM, bits/8
	if bits < 0 {
		format, size = wavFloat, -bits/8
	}
	var data []byte
	le := binary.LittleEndian
	for _, v := range x {
		switch bits {
		case 8:
			data = append(data, byte(int(v*127)+128))
		case 24:
			s := int32(math.Round(v * (1<<23 - 1)))
			data = append(data, byte(s), byte(s>>8), byte(s>>16))
		case 32:
			data = le.AppendUint32(data, uint32(int32(math.Round(v*(1<<31-1)))))
		case -32:
			data = le.AppendUint32(data, math.Float32bits(float32(v)))
		case -64:
			data = le.AppendUint64(data, math.Float64bits(v))
		}
	}
	h := []byte("RIFF")
	h = le.AppendUint32(h, uint32(36+len(data)))
	h = append(h, "WAVEfmt "...)
	h = le.AppendUint32(h, 16)
	h = le.AppendUint16(h, uint16(format))
	h = le.AppendUint16(h, uint16(ch))
	h = le.AppendUint32(h, uint32(rate))
	h = le.AppendUint32(h, uint32(rate*ch*size))
	h = le.AppendUint16(h, uint16(ch*size))
	h = le.AppendUint16(h, uint16(size*8))
	h = append(h, "data"...)
	h = le.AppendUint32(h, uint32(len(data)))
	return append(h, data...)
}

// readOgg demuxes an Ogg Opus file and returns its packets, pre-skip and
// final granule position.
func readOgg(t testing.TB, file []byte) (packets [][]byte, preSkip int, granule int64) {
	t.Helper()
	pr, err := NewPacketReader(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("NewPacketReader: %v", err)
	}
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d packets: %v", len(packets), err)
		}
		packets = append(packets, p)
	}
	g, last := pr.endGranule()
	if !last {
		t.Fatal("no end-of-stream page")
	}
	return packets, pr.PreSkip(), g
}

// decodeOgg decodes an Ogg Opus file to 48 kHz mono, without the pre-skip
// and cut at the final granule position, as a player would.
func decodeOgg(t testing.TB, file []byte) []float64 {
	t.Helper()
	packets, preSkip, granule := readOgg(t, file)
	pcm, err := DecodePackets(packets)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(pcm)) < granule {
		t.Fatalf("granule %d beyond the %d decoded samples", granule, len(pcm))
	}
	out := make([]float64, granule-int64(preSkip))
	for i := range out {
		out[i] = float64(pcm[preSkip+i]) / 32768
	}
	return out
}

// power returns the mean power of x at freq Hz (Goertzel).
func power(x []float64, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return p / (n * n / 4) // a unit sine gives 1
}

func meanSquare(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s / float64(len(x))
}

func measureLUFS(x []float64) float64 {
	m := newLoudnessMeter()
	f := make([]float32, len(x))
	for i, v := range x {
		f[i] = float32(v)
	}
	m.add(f)
	return m.integrated()
}

// needFFmpeg returns the ffmpeg path, skipping the test when it is absent
// on a developer machine; in CI (CI set) its absence is a failure.
func needFFmpeg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is required in CI")
		}
		t.Skip("ffmpeg not installed")
	}
	return p
}

// ffmpegFile runs ffmpeg on in and returns the file it writes, named
// "out."+ext; a real file lets muxers seek back to finish their headers
// (the MP3 muxer writes its Xing/LAME tag that way).
func ffmpegFile(t testing.TB, in []byte, ext string, args ...string) []byte {
	t.Helper()
	name := filepath.Join(t.TempDir(), "out."+ext)
	ffmpeg(t, in, append(args, "-y", name)...)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ffmpeg runs ffmpeg with in on stdin and returns its stdout.
func ffmpeg(t testing.TB, in []byte, args ...string) []byte {
	t.Helper()
	bin := needFFmpeg(t)
	cmd := exec.Command(bin, append([]string{"-hide_banner", "-loglevel", "error", "-i", "pipe:0"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out.Bytes()
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var le *loa.Error
	if !errors.As(err, &le) || le.Code != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
}
