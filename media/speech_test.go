package media

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// needEspeak skips when espeak-ng is absent outside CI; in CI (`make test`
// installs it) its absence is a failure.
func needEspeak(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("espeak-ng is not installed; `make test` installs it")
		}
		t.Skip("espeak-ng is not installed (apt-get install espeak-ng, or `make deps-test`)")
	}
}

// frameRMS returns the RMS of each 20 ms frame, on a 0..1 scale.
func frameRMS(pcm []int16, rate int) []float64 {
	n := rate / 50
	var out []float64
	for i := 0; i+n <= len(pcm); i += n {
		var sum float64
		for _, v := range pcm[i : i+n] {
			x := float64(v) / 32768
			sum += x * x
		}
		out = append(out, math.Sqrt(sum/float64(n)))
	}
	return out
}

func TestEspeakNGSpeaksVietnamese(t *testing.T) {
	needEspeak(t)
	const text = "Bão số 3 đang tiến vào bờ biển Quảng Ngãi. " +
		"Đề nghị bà con khẩn trương sơ tán đến nơi an toàn."
	pcm, rate, err := EspeakNG{}.Synthesize(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if rate < 8000 || rate > 48000 {
		t.Fatalf("rate %d Hz", rate)
	}
	// 24 syllables (words, in Vietnamese) at 150 words a minute is about
	// ten seconds; allow for espeak's pauses at punctuation either way.
	secs := float64(len(pcm)) / float64(rate)
	if secs < 4 || secs > 25 {
		t.Fatalf("%.1f s of speech for 24 words at 150 wpm", secs)
	}
	// Speech has loud voiced frames and quiet gaps between words; a
	// silent buffer, noise or a constant tone has not both.
	frames := frameRMS(pcm, rate)
	loud, quiet := 0, 0
	for _, r := range frames {
		switch {
		case r > 0.03:
			loud++
		case r < 0.005:
			quiet++
		}
	}
	if f := float64(loud) / float64(len(frames)); f < 0.3 {
		t.Errorf("only %.0f%% of 20 ms frames are voiced", 100*f)
	}
	if quiet == 0 {
		t.Error("no pause anywhere: not speech")
	}

	// A slower rate says the same text in more time.
	slow, srate, err := EspeakNG{Rate: 80}.Synthesize(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if float64(len(slow))/float64(srate) <= secs {
		t.Errorf("80 wpm took %.1f s, 150 wpm %.1f s", float64(len(slow))/float64(srate), secs)
	}
}

// The text goes on stdin: something that looks like a flag is spoken.
func TestEspeakNGTextIsNotArgv(t *testing.T) {
	needEspeak(t)
	pcm, _, err := EspeakNG{}.Synthesize(context.Background(), "-v xx --version")
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) == 0 {
		t.Fatal("no audio")
	}
}

func TestEspeakNGErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("not installed", func(t *testing.T) {
		_, _, err := EspeakNG{Path: filepath.Join(t.TempDir(), "espeak-ng")}.Synthesize(ctx, "xin chào")
		if loa.ErrorCode(err) != loa.EUNAVAILABLE || !strings.Contains(loa.ErrorMessage(err), "espeak-ng is not installed") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown voice", func(t *testing.T) {
		needEspeak(t)
		_, _, err := EspeakNG{Voice: "zzq"}.Synthesize(ctx, "xin chào")
		if loa.ErrorCode(err) != loa.EUNAVAILABLE || !strings.Contains(loa.ErrorMessage(err), "zzq") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("too long", func(t *testing.T) {
		_, _, err := EspeakNG{}.Synthesize(ctx, strings.Repeat("á", MaxSpeechText+1))
		if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), "text:") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, _, err := EspeakNG{}.Synthesize(ctx, " \n\t* ")
		if loa.ErrorCode(err) != loa.EINVALID {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		// An engine that never answers is stopped at the timeout.
		script := filepath.Join(t.TempDir(), "engine")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, err := EspeakNG{Path: script, Timeout: 50 * time.Millisecond}.Synthesize(ctx, "xin chào")
		if loa.ErrorCode(err) != loa.ETIMEOUT {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("garbage output", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "engine")
		if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >/dev/null; echo not a wav\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, err := EspeakNG{Path: script}.Synthesize(ctx, "xin chào")
		if err == nil || !strings.Contains(err.Error(), "RIFF") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSpeechText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Xin   chào\n\nbà con  ", "Xin chào bà con"},
		{"**KHẨN** # bão", "KHẨN bão"},
		{"Mưa 200mm, gió 120 km/h.", "Mưa 200 mi li mét, gió 120 ki lô mét một giờ."},
		{"Nhiệt độ 38°C", "Nhiệt độ 38 độ xê"},
		{"gió 15 m/s", "gió 15 mét một giây"},
		{"ngày 12/10 và 3/11/2026", "ngày 12 tháng 10 và 3 tháng 11 năm 2026"},
		{"1/2 số hộ", "1/2 số hộ"},     // a fraction, not a date
		{"ngày 40/13", "ngày 40/13"},   // not a date
		{"2 hay 3 lần", "2 hay 3 lần"}, // "ha" inside a word
		{"cấp 12, giật cấp 14", "cấp 12, giật cấp 14"},
	} {
		got, err := SpeechText(c.in)
		if err != nil || got != c.want {
			t.Errorf("SpeechText(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "   ", "\x00\x01", "\xff\xfe", strings.Repeat("a", MaxSpeechText+1)} {
		if _, err := SpeechText(bad); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("SpeechText(%.20q): %v, want invalid", bad, err)
		}
	}
	if _, err := SpeechText(strings.Repeat("ệ", MaxSpeechText)); err != nil {
		t.Errorf("exactly MaxSpeechText characters: %v", err)
	}
}

func FuzzSpeechText(f *testing.F) {
	for _, s := range []string{"Bão số 3, gió 120km/h, mưa 200 mm", "ngày 12/10/2026", "* # •", "\x00", "ngày 1/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := SpeechText(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(out) || out == "" || out != strings.TrimSpace(out) {
			t.Fatalf("%q -> %q", in, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("%q -> %q keeps control character %U", in, out, r)
			}
		}
		if strings.Contains(out, "  ") {
			t.Fatalf("%q -> %q has a double space", in, out)
		}
	})
}

// zeroCrossHz estimates the frequency of a tone from its zero crossings.
func zeroCrossHz(pcm []int16, rate int) float64 {
	n := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(pcm)) / float64(rate))
}

func TestAttentionToneRises(t *testing.T) {
	for _, rate := range []int{22050, 48000} {
		pcm := AttentionTone(rate)
		// Three notes separated by silence: find them by energy.
		frames := frameRMS(pcm, rate)
		var notes [][2]int // frame ranges
		in := false
		for i, r := range frames {
			switch {
			case r > 0.01 && !in:
				notes = append(notes, [2]int{i, i})
				in = true
			case r <= 0.01 && in:
				notes[len(notes)-1][1] = i
				in = false
			}
		}
		if len(notes) != 3 {
			t.Fatalf("%d Hz: %d notes, want 3", rate, len(notes))
		}
		prev := 0.0
		for i, nt := range notes {
			seg := pcm[nt[0]*rate/50 : nt[1]*rate/50]
			hz := zeroCrossHz(seg, rate)
			if hz <= prev*1.1 {
				t.Errorf("%d Hz: note %d at %.0f Hz does not rise above %.0f Hz", rate, i, hz, prev)
			}
			prev = hz
		}
		if last := frames[len(frames)-1]; last != 0 {
			t.Errorf("%d Hz: ends with RMS %.3f, want silence before the speech", rate, last)
		}
	}
}

// fixedSynth is a Synthesizer that returns a set buffer: SpeechWAV's
// framing is under test here, not an engine.
type fixedSynth struct{ pcm []int16 }

func (f fixedSynth) Synthesize(context.Context, string) ([]int16, int, error) {
	return f.pcm, 22050, nil
}

func TestSpeechWAVPutsToneFirst(t *testing.T) {
	speech := make([]int16, 22050)
	for i := range speech {
		speech[i] = 1000
	}
	for _, tone := range []bool{false, true} {
		b, err := SpeechWAV(context.Background(), fixedSynth{speech}, "x", tone)
		if err != nil {
			t.Fatal(err)
		}
		pcm, rate, err := decodeSpeechWAV(b)
		if err != nil {
			t.Fatal(err)
		}
		want := len(speech)
		if tone {
			want += len(AttentionTone(rate))
		}
		if rate != 22050 || len(pcm) != want || pcm[len(pcm)-1] != 1000 {
			t.Errorf("tone=%v: %d samples at %d Hz, want %d at 22050 ending in the speech", tone, len(pcm), rate, want)
		}
	}
}

// BenchmarkEspeakNG reports how much faster than real time espeak-ng
// speaks a bulletin (an alert waits for it before its first frame).
func BenchmarkEspeakNG(b *testing.B) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		b.Skip("espeak-ng is not installed")
	}
	const text = "Bão số 13 đang tiến vào bờ biển miền Trung. Đêm nay bão đổ bộ vào khu vực từ Thừa Thiên Huế đến Quảng Ngãi, " +
		"sức gió mạnh cấp 12, giật cấp 14. Bà con ở trong nhà kiên cố, tàu thuyền khẩn trương về nơi tránh trú."
	var audio time.Duration
	start := time.Now()
	for b.Loop() {
		pcm, rate, err := EspeakNG{}.Synthesize(context.Background(), text)
		if err != nil {
			b.Fatal(err)
		}
		audio += time.Duration(len(pcm)) * time.Second / time.Duration(rate)
	}
	b.ReportMetric(audio.Seconds()/time.Since(start).Seconds(), "x-realtime")
	b.ReportMetric(audio.Seconds()/float64(b.N), "speech-s/op")
}
