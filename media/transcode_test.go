package media

import (
	"bytes"
	"context"
	"io"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func transcode(t testing.TB, in []byte, opt Options) (Info, []byte) {
	t.Helper()
	var out bytes.Buffer
	info, err := Transcode(context.Background(), bytes.NewReader(in), &out, opt)
	if err != nil {
		t.Fatalf("Transcode: %v", err)
	}
	return info, out.Bytes()
}

// checkTone checks a transcoded 1 kHz tone of secs seconds: its length,
// frequency, loudness and peak.
func checkTone(t *testing.T, info Info, file []byte, format string, secs float64) {
	t.Helper()
	if info.Format != format {
		t.Errorf("Format = %q, want %q", info.Format, format)
	}
	pcm := decodeOgg(t, file)
	want := secs * 48000
	if d := math.Abs(float64(len(pcm)) - want); d > 960 {
		t.Errorf("decoded %d samples, want %.0f ±960", len(pcm), want)
	}
	if d := math.Abs(info.Duration.Seconds() - secs); d > 0.02 {
		t.Errorf("Duration = %v, want %vs", info.Duration, secs)
	}
	packets, preSkip, granule := readOgg(t, file)
	if got := dur(granule - int64(preSkip)); got != info.Duration {
		t.Errorf("final granule %d - pre-skip %d is %v, Info.Duration %v", granule, preSkip, got, info.Duration)
	}
	if len(packets) != info.Frames {
		t.Errorf("file holds %d packets, Info.Frames = %d", len(packets), info.Frames)
	}
	// Skip the edges, where the codec ramps in and out.
	mid := pcm[4800 : len(pcm)-4800]
	p1k := power(mid, 48000, 1000)
	total := 2 * meanSquare(mid)
	if p1k < 0.95*total {
		t.Errorf("1 kHz holds %.3f of the power, want ≥ 0.95", p1k/total)
	}
	for _, f := range []float64{500, 1500, 2000, 3000} {
		if p := power(mid, 48000, f); p > 1e-4*p1k {
			t.Errorf("power at %v Hz is %.1f dB below 1 kHz, want ≥ 40 dB", f, 10*math.Log10(p1k/p))
		}
	}
	if l := measureLUFS(pcm); math.Abs(l-DefaultTargetLUFS) > 1 {
		t.Errorf("output loudness %.2f LUFS, want %.1f ±1", l, DefaultTargetLUFS)
	}
}

func TestTranscodeWAV(t *testing.T) {
	for _, c := range []struct {
		name           string
		rate, ch, bits int
		amp            float64
	}{
		{"16-bit mono 48k", 48000, 1, 16, 0.5},
		{"16-bit stereo 44.1k", 44100, 2, 16, 0.1},
		{"24-bit mono 22.05k", 22050, 1, 24, 0.02},
		{"16-bit mono 8k", 8000, 1, 16, 0.9},
		{"16-bit mono 11.025k", 11025, 1, 16, 0.3},
		{"16-bit stereo 16k", 16000, 2, 16, 0.3},
		{"32-bit mono 32k", 32000, 1, 32, 0.3},
		{"float32 stereo 48k", 48000, 2, -32, 0.3},
		{"float64 mono 96k", 96000, 1, -64, 0.3},
	} {
		t.Run(c.name, func(t *testing.T) {
			const secs = 2.5
			in := wavFile(t, tone(c.rate, c.ch, secs, 1000, c.amp), c.rate, c.ch, c.bits)
			info, out := transcode(t, in, Options{})
			checkTone(t, info, out, "wav", secs)
			// A full-scale sine is -3.01 LUFS, so amp gives 20 log10(amp) - 3.01.
			want := 20*math.Log10(c.amp) - 3.01
			if math.Abs(info.LoudnessLUFS-want) > 0.2 {
				t.Errorf("LoudnessLUFS = %.2f, want %.2f", info.LoudnessLUFS, want)
			}
			if math.Abs(info.GainDB-(DefaultTargetLUFS-want)) > 0.2 {
				t.Errorf("GainDB = %.2f, want %.2f", info.GainDB, DefaultTargetLUFS-want)
			}
		})
	}
}

func TestTranscodeMP3(t *testing.T) {
	for _, c := range []struct {
		rate, ch int
	}{{44100, 2}, {22050, 1}, {48000, 1}} {
		const secs = 3.0
		wav := wavFile(t, tone(c.rate, c.ch, secs, 1000, 0.25), c.rate, c.ch, 16)
		mp3 := ffmpegFile(t, wav, "mp3", "-c:a", "libmp3lame", "-b:a", "128k")
		info, out := transcode(t, mp3, Options{})
		checkTone(t, info, out, "mp3", secs)
	}
}

func TestTranscodeOggOpus(t *testing.T) {
	const secs = 2.0
	// Our own output, fed back in: decoding honours pre-skip and end trim.
	wav := wavFile(t, tone(44100, 1, secs, 1000, 0.05), 44100, 1, 16)
	_, first := transcode(t, wav, Options{TargetLUFS: -30})
	info, out := transcode(t, first, Options{})
	checkTone(t, info, out, "opus", secs)
	if math.Abs(info.LoudnessLUFS+30) > 1 {
		t.Errorf("LoudnessLUFS of a -30 LUFS file = %.2f", info.LoudnessLUFS)
	}

	// Stereo Ogg Opus from ffmpeg (libopus), at a different rate.
	wav = wavFile(t, tone(32000, 2, secs, 1000, 0.3), 32000, 2, 16)
	ogg := ffmpegFile(t, wav, "opus", "-c:a", "libopus", "-b:a", "96k")
	info, out = transcode(t, ogg, Options{})
	checkTone(t, info, out, "opus", secs)
}

// ffmpeg must read what we write, and agree on its length and loudness
// (its ebur128 filter is an independent BS.1770 meter).
func TestTranscodeOutputFFmpeg(t *testing.T) {
	bin := needFFmpeg(t)
	const secs = 4.0
	x := tone(48000, 1, secs, 440, 0.4)
	for i := range x { // some pink-ish variety so it is not a single tone
		x[i] += 0.2 * math.Sin(2*math.Pi*3100*float64(i)/48000) * math.Sin(2*math.Pi*0.7*float64(i)/48000)
	}
	_, out := transcode(t, wavFile(t, x, 48000, 1, 16), Options{TargetLUFS: -18})
	pcm := ffmpeg(t, out, "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1")
	if n := len(pcm) / 2; n != secs*48000 {
		t.Errorf("ffmpeg decodes %d samples, want %v", n, secs*48000)
	}
	cmd := exec.Command(bin, "-hide_banner", "-nostats", "-i", "pipe:0", "-af", "ebur128", "-f", "null", "-")
	cmd.Stdin = bytes.NewReader(out)
	report, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg ebur128: %v\n%s", err, report)
	}
	m := regexp.MustCompile(`I:\s+(-?[0-9.]+) LUFS`).FindAllSubmatch(report, -1)
	if m == nil {
		t.Fatalf("no integrated loudness in ffmpeg's report:\n%s", report)
	}
	lufs, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	if math.Abs(lufs+18) > 1 {
		t.Errorf("ffmpeg measures %.1f LUFS, want -18 ±1", lufs)
	}
}

func TestTranscodeLimitsPeaks(t *testing.T) {
	// A quiet bed with rare loud clicks: normalising the bed would push the
	// clicks far past full scale, so the limiter must hold them at -1 dBFS.
	x := tone(48000, 1, 3, 300, 0.01)
	for i := 0; i < len(x); i += 12000 {
		for j := range 48 {
			x[i+j] = 0.9 * math.Sin(2*math.Pi*float64(j)/48)
		}
	}
	info, out := transcode(t, wavFile(t, x, 48000, 1, 16), Options{})
	if info.GainDB < 10 {
		t.Fatalf("GainDB = %.1f; the test needs a large gain", info.GainDB)
	}
	pcm := decodeOgg(t, out)
	var peak float64
	for _, v := range pcm {
		peak = max(peak, math.Abs(v))
	}
	// Opus may overshoot the limiter's ceiling a little.
	if db := 20 * math.Log10(peak); db > CeilingDBFS+1 {
		t.Errorf("output peak %.2f dBFS, want ≤ %.1f (+1 dB codec overshoot)", db, CeilingDBFS)
	}
}

func TestTranscodeGainCap(t *testing.T) {
	x := tone(48000, 1, 1, 1000, 0.001) // -63 LUFS
	info, _ := transcode(t, wavFile(t, x, 48000, 1, 16), Options{})
	if info.GainDB != MaxGainDB {
		t.Errorf("GainDB = %.1f, want the %.0f dB cap", info.GainDB, MaxGainDB)
	}
}

func TestTranscodeErrors(t *testing.T) {
	okWAV := wavFile(t, tone(48000, 1, 1, 1000, 0.3), 48000, 1, 16)
	okOgg := func() []byte { _, b := transcode(t, okWAV, Options{}); return b }()
	random := make([]byte, 1000)
	for i := range random {
		random[i] = byte(i*7919 + i*i*31)
	}
	corruptOgg := bytes.Clone(okOgg)
	corruptOgg[len(corruptOgg)-10] ^= 0x55
	for _, c := range []struct {
		name string
		in   []byte
		opt  Options
		code string
		msg  string
	}{
		{"empty", nil, Options{}, loa.EINVALID, "file is empty"},
		{"random bytes", random, Options{}, loa.EUNSUPPORTED, "WAV, MP3, Ogg Opus"},
		{"text", []byte("hello, this is not audio\n"), Options{}, loa.EUNSUPPORTED, "looks like text"},
		{"pdf", []byte("%PDF-1.4\n\x00\x01"), Options{}, loa.EUNSUPPORTED, "PDF"},
		{"truncated WAV header", okWAV[:30], Options{}, loa.EINVALID, "truncated"},
		{"truncated WAV data", okWAV[:len(okWAV)/2], Options{}, loa.EINVALID, "truncated"},
		{"8-bit WAV", wavFile(t, tone(8000, 1, 1, 1000, 0.3), 8000, 1, 8), Options{}, loa.EUNSUPPORTED, "8-bit"},
		{"silent WAV", wavFile(t, make([]float64, 48000), 48000, 1, 16), Options{}, loa.EINVALID, "silent"},
		{"too short", wavFile(t, tone(48000, 1, 0.01, 1000, 0.3), 48000, 1, 16), Options{}, loa.EINVALID, "too short"},
		{"over MaxBytes", okWAV, Options{MaxBytes: 1000}, loa.ETOOLARGE, "1000-byte limit"},
		{"over MaxDuration", okWAV, Options{MaxDuration: 500 * time.Millisecond}, loa.ETOOLARGE, "limit"},
		{"over MaxDuration ogg", okOgg, Options{MaxDuration: 500 * time.Millisecond}, loa.ETOOLARGE, "limit"},
		{"truncated ogg", okOgg[:len(okOgg)-20], Options{}, loa.EINVALID, "truncated"},
		{"truncated ogg at page", okOgg[:len(okOgg)/2], Options{}, loa.EINVALID, "truncated"},
		{"ogg CRC", corruptOgg, Options{}, loa.EINVALID, "CRC"},
		{"ID3 tag past the end", []byte("ID3\x03\x00\x00\x7f\x7f\x7f\x7f\xff\xfb\x90\x64"), Options{}, loa.EINVALID, "ID3"},
		{"target above 0 LUFS", okWAV, Options{TargetLUFS: 3}, loa.EINVALID, "target loudness"},
		{"bitrate", okWAV, Options{Bitrate: 100}, loa.EINVALID, "bitrate"},
		{"odd WAV rate", wavFile(t, tone(44101, 1, 0.1, 1000, 0.3), 44101, 1, 16), Options{}, loa.EUNSUPPORTED, "44101"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Transcode(context.Background(), bytes.NewReader(c.in), &bytes.Buffer{}, c.opt)
			wantCode(t, err, c.code)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
		})
	}
}

// A reader that is not seekable goes through the spool, and a large one
// through a temporary file.
func TestTranscodeStreamedInput(t *testing.T) {
	const secs = 30.0 // 5.8 MB of 48 kHz stereo, past the 4 MiB kept in memory
	in := wavFile(t, tone(48000, 2, secs, 1000, 0.3), 48000, 2, 16)
	if len(in) <= spoolMemory {
		t.Fatalf("input %d bytes does not exceed the %d in-memory spool", len(in), spoolMemory)
	}
	var out bytes.Buffer
	info, err := Transcode(context.Background(), struct{ io.Reader }{bytes.NewReader(in)}, &out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Duration != secs*time.Second {
		t.Errorf("Duration = %v", info.Duration)
	}
	_, err = Transcode(context.Background(), struct{ io.Reader }{bytes.NewReader(in)}, &out, Options{MaxBytes: int64(len(in)) - 1})
	wantCode(t, err, loa.ETOOLARGE)
}

func TestTranscodeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := wavFile(t, tone(48000, 1, 1, 1000, 0.3), 48000, 1, 16)
	_, err := Transcode(ctx, bytes.NewReader(in), &bytes.Buffer{}, Options{})
	if err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestTranscodeDeterministic(t *testing.T) {
	in := wavFile(t, tone(44100, 2, 1, 1000, 0.3), 44100, 2, 16)
	_, a := transcode(t, in, Options{})
	_, b := transcode(t, in, Options{})
	if !bytes.Equal(a, b) {
		t.Error("the same input gave two different files")
	}
}

func FuzzTranscode(f *testing.F) {
	wav := wavFile(f, tone(8000, 1, 0.2, 1000, 0.3), 8000, 1, 16)
	f.Add(wav)
	_, ogg := transcode(f, wavFile(f, tone(48000, 1, 0.2, 1000, 0.3), 48000, 1, 16), Options{})
	f.Add(ogg)
	f.Add(wavFile(f, tone(22050, 2, 0.1, 1000, 0.3), 22050, 2, 24))
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00"))
	f.Add([]byte("\xff\xfb\x90\x64\x00\x00\x00\x00"))
	f.Add([]byte("OggS"))
	f.Add([]byte("fLaC\x00\x00\x00\x22\x12\x00")) // to ffmpeg, which refuses it
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := Transcode(context.Background(), bytes.NewReader(in), io.Discard, Options{MaxDuration: 10 * time.Second})
		if err != nil {
			if loa.ErrorCode(err) == loa.EINTERNAL {
				t.Fatalf("internal error on bad input: %v", err)
			}
			return
		}
		if info.Frames < 1 {
			t.Fatalf("success with %d frames", info.Frames)
		}
	})
}

func BenchmarkTranscode(b *testing.B) {
	const secs = 60
	for _, c := range []struct {
		name     string
		rate, ch int
	}{{"wav-48k-mono", 48000, 1}, {"wav-44.1k-stereo", 44100, 2}} {
		in := wavFile(b, tone(c.rate, c.ch, secs, 1000, 0.3), c.rate, c.ch, 16)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := Transcode(context.Background(), bytes.NewReader(in), io.Discard, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(secs/perOp, "x-realtime")
		})
	}
}

// A bump at exactly 1 s must come out at sample 48000, whatever the input
// rate and format: this catches errors in pre-skip, resampler centring and
// MP3 encoder-delay trimming, each hundreds of samples.
func TestTranscodeAlignment(t *testing.T) {
	bump := func(rate int) []float64 {
		x := make([]float64, 3*rate)
		for i := range x {
			x[i] = 0.002 * math.Sin(2*math.Pi*300*float64(i)/float64(rate)) // keeps the level measurable
		}
		w := rate / 500 // 2 ms
		for j := -w; j <= w; j++ {
			x[rate+j] += 0.8 * (0.5 + 0.5*math.Cos(math.Pi*float64(j)/float64(w)))
		}
		return x
	}
	peakAt := func(pcm []float64) int {
		best := 0
		for i, v := range pcm {
			if math.Abs(v) > math.Abs(pcm[best]) {
				best = i
			}
		}
		return best
	}
	cases := []struct {
		name string
		in   func(t *testing.T) []byte
	}{
		{"wav 48k", func(t *testing.T) []byte { return wavFile(t, bump(48000), 48000, 1, 16) }},
		{"wav 44.1k", func(t *testing.T) []byte { return wavFile(t, bump(44100), 44100, 1, 16) }},
		{"wav 8k", func(t *testing.T) []byte { return wavFile(t, bump(8000), 8000, 1, 16) }},
		{"wav 11.025k", func(t *testing.T) []byte { return wavFile(t, bump(11025), 11025, 1, 24) }},
		{"mp3 44.1k", func(t *testing.T) []byte {
			return ffmpegFile(t, wavFile(t, bump(44100), 44100, 1, 16), "mp3", "-c:a", "libmp3lame", "-b:a", "128k")
		}},
		{"mp3 22.05k", func(t *testing.T) []byte {
			return ffmpegFile(t, wavFile(t, bump(22050), 22050, 1, 16), "mp3", "-c:a", "libmp3lame", "-b:a", "64k")
		}},
		{"opus by ffmpeg", func(t *testing.T) []byte {
			return ffmpegFile(t, wavFile(t, bump(48000), 48000, 1, 16), "opus", "-c:a", "libopus", "-b:a", "64k")
		}},
		{"opus by us", func(t *testing.T) []byte {
			_, b := transcode(t, wavFile(t, bump(44100), 44100, 1, 16), Options{TargetLUFS: -30})
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, out := transcode(t, c.in(t), Options{TargetLUFS: -30})
			if info.Duration != 3*time.Second {
				t.Errorf("Duration = %v, want 3s", info.Duration)
			}
			if at := peakAt(decodeOgg(t, out)); at < 48000-16 || at > 48000+16 {
				t.Errorf("bump at sample %d, want 48000 ±16", at)
			}
		})
	}
}
