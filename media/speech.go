package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// Synthesizer turns text into speech: mono 16-bit PCM at rate Hz. The
// alert service speaks Text content through it; EspeakNG is the engine
// shipped with Loa, and a better Vietnamese voice plugs in here.
type Synthesizer interface {
	Synthesize(ctx context.Context, text string) (pcm []int16, rate int, err error)
}

// MaxSpeechText is the longest text, in characters, a synthesizer is asked
// to speak: an alert's limit, about three minutes of speech, longer than
// any bulletin should be and short enough that synthesis stays well inside
// its timeout.
const MaxSpeechText = loa.MaxAlertText

// maxSpeechBytes bounds what the engine may write: 16-bit mono at up to
// 48 kHz for 15 minutes. Anything longer is an engine gone wrong.
const maxSpeechBytes = 48000 * 2 * 60 * 15

// EspeakNG runs the espeak-ng command-line synthesizer. The text goes on
// standard input, never on the command line, so no text can become a flag.
type EspeakNG struct {
	Voice   string        // espeak-ng voice; "vi" (Vietnamese) when empty
	Path    string        // the executable; "espeak-ng" looked up in PATH when empty
	Rate    int           // words per minute; 150 when 0 (espeak's 175 is hurried through a horn speaker)
	Timeout time.Duration // for one synthesis; 30 s when 0
}

// Synthesize speaks text with espeak-ng and returns its PCM (22050 Hz for
// the stock voices).
func (e EspeakNG) Synthesize(ctx context.Context, text string) ([]int16, int, error) {
	text, err := SpeechText(text)
	if err != nil {
		return nil, 0, err
	}
	path := e.Path
	if path == "" {
		path = "espeak-ng"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return nil, 0, loa.Errorf(loa.EUNAVAILABLE, "speech engine espeak-ng is not installed")
	}
	voice := e.Voice
	if voice == "" {
		voice = "vi"
	}
	rate := e.Rate
	if rate == 0 {
		rate = 150
	}
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, "-v", voice, "-s", fmt.Sprint(rate), "--stdout")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, left: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, fmt.Errorf("espeak-ng: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("espeak-ng: start: %w", err)
	}
	// Read one byte past the bound to tell "exactly at the limit" from
	// "over it"; the rest is drained so the engine is not blocked on a
	// full pipe while Wait waits for it.
	out, readErr := io.ReadAll(io.LimitReader(stdout, maxSpeechBytes+1))
	over := len(out) > maxSpeechBytes
	if over {
		cancel()
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	switch {
	case over:
		return nil, 0, loa.Errorf(loa.EINVALID, "text: the speech would be longer than 15 minutes")
	case waitErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, 0, loa.Errorf(loa.ETIMEOUT, "speech engine espeak-ng did not finish within %s", timeout)
	case waitErr != nil && ctx.Err() != nil:
		return nil, 0, fmt.Errorf("espeak-ng: %w", ctx.Err()) // the caller gave up
	case waitErr != nil:
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "voice does not exist") {
			return nil, 0, loa.Errorf(loa.EUNAVAILABLE, "speech engine espeak-ng has no voice %q", voice)
		}
		return nil, 0, fmt.Errorf("espeak-ng: %w: %s", waitErr, msg)
	case readErr != nil:
		return nil, 0, fmt.Errorf("espeak-ng: read output: %w", readErr)
	}
	pcm, sr, err := decodeSpeechWAV(out)
	if err != nil {
		return nil, 0, fmt.Errorf("espeak-ng output: %w", err)
	}
	if len(pcm) == 0 {
		return nil, 0, fmt.Errorf("espeak-ng wrote no audio for %d characters of text", utf8.RuneCountInString(text))
	}
	return pcm, sr, nil
}

// limitedBuffer keeps the first left bytes written to it and drops the
// rest, so a chatty engine cannot grow memory through its stderr.
type limitedBuffer struct {
	buf  *bytes.Buffer
	left int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.left)
	b.buf.Write(p[:n])
	b.left -= n
	return len(p), nil
}

// decodeSpeechWAV reads the 16-bit mono WAV espeak-ng writes to a pipe:
// it cannot seek back, so the RIFF and data sizes are placeholders and the
// samples run to the end of the stream.
func decodeSpeechWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE stream")
	}
	le := binary.LittleEndian
	var rate, channels, bits int
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(le.Uint32(b[p+4:p+8]))
		p += 8
		end := p + size
		if size < 0 || end > len(b) || end < p {
			end = len(b)
		}
		switch id {
		case "fmt ":
			if end-p < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			channels = int(le.Uint16(b[p+2:]))
			rate = int(le.Uint32(b[p+4:]))
			bits = int(le.Uint16(b[p+14:]))
		case "data":
			if channels != 1 || bits != 16 || rate <= 0 || rate > 192000 {
				return nil, 0, fmt.Errorf("want 16-bit mono, got %d-bit %d channels at %d Hz", bits, channels, rate)
			}
			pcm := make([]int16, (end-p)/2)
			for i := range pcm {
				pcm[i] = int16(le.Uint16(b[p+2*i:]))
			}
			return pcm, rate, nil
		}
		p = end + size&1
	}
	return nil, 0, errors.New("no data chunk")
}

// Units espeak-ng's Vietnamese voice spells letter by letter ("mm" as
// "em em"), written out as a Vietnamese announcer reads them. Longest
// first, so "km/h" is not taken for "km".
var speechUnits = []struct{ unit, words string }{
	{"km/giờ", "ki lô mét một giờ"},
	{"km/h", "ki lô mét một giờ"},
	{"m/s", "mét một giây"},
	{"°C", "độ xê"},
	{"km²", "ki lô mét vuông"},
	{"km2", "ki lô mét vuông"},
	{"ha", "héc ta"},
	{"km", "ki lô mét"},
	{"cm", "xăng ti mét"},
	{"mm", "mi li mét"},
	{"m³", "mét khối"},
	{"m3", "mét khối"},
}

var (
	// A number followed by a unit, the unit not running on into a word.
	unitRE = func() *regexp.Regexp {
		alts := make([]string, len(speechUnits))
		for i, u := range speechUnits {
			alts[i] = regexp.QuoteMeta(u.unit)
		}
		return regexp.MustCompile(`(\d)\s?(` + strings.Join(alts, "|") + `)([^\p{L}\p{N}]|$)`)
	}()
	// Dates as bulletins write them: dd/mm/yyyy anywhere, dd/mm only after
	// "ngày" (elsewhere 1/2 is more likely a fraction).
	dateRE = regexp.MustCompile(`(?i)(ngày\s+)?\b(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b`)
)

// SpeechText checks and normalises text for a speech engine: it must not
// be empty or longer than MaxSpeechText characters; control characters and
// decoration symbols become spaces, runs of space collapse, dates (12/10,
// 12/10/2026) and units (mm, km/h, °C) are written as words.
func SpeechText(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", loa.Errorf(loa.EINVALID, "text: not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxSpeechText {
		return "", loa.Errorf(loa.EINVALID, "text: %d characters is more than the %d the speech engine takes; split the bulletin or record it", n, MaxSpeechText)
	}
	var b strings.Builder
	space := true // drop leading space
	for _, r := range text {
		if unicode.IsControl(r) || unicode.IsSpace(r) || strings.ContainsRune("*#_~|=<>^`•·▪●■□◆", r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(r)
		space = false
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", loa.Errorf(loa.EINVALID, "text: nothing to speak")
	}
	out = dateRE.ReplaceAllStringFunc(out, func(s string) string {
		m := dateRE.FindStringSubmatch(s)
		d, mo := atoi(m[2]), atoi(m[3])
		if d < 1 || d > 31 || mo < 1 || mo > 12 || (m[1] == "" && m[4] == "") {
			return s
		}
		out := m[1] + m[2] + " tháng " + m[3]
		if m[4] != "" {
			out += " năm " + m[4]
		}
		return out
	})
	out = unitRE.ReplaceAllStringFunc(out, func(s string) string {
		m := unitRE.FindStringSubmatch(s)
		for _, u := range speechUnits {
			if u.unit == m[2] {
				return m[1] + " " + u.words + m[3]
			}
		}
		return s
	})
	return out, nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// AttentionTone is the chime played before an alert: three rising tones
// (G5, C6, E6; a major arpeggio carries over wind and does not sound like
// a siren), each with a soft attack and decay, then a short pause.
func AttentionTone(rate int) []int16 {
	const amp = 0.6
	note := rate * 30 / 100 // 300 ms
	pause := rate * 8 / 100
	var out []int16
	for _, f := range []float64{784, 1047, 1319} {
		for i := range note {
			t := float64(i) / float64(rate)
			// 10 ms linear attack, then exponential decay like a struck bell.
			env := math.Min(1, t/0.010) * math.Exp(-3*t)
			// A quiet octave harmonic gives the bell its brightness.
			v := math.Sin(2*math.Pi*f*t) + 0.25*math.Sin(4*math.Pi*f*t)
			tail := math.Min(1, float64(note-i)/float64(rate/100)) // 10 ms fade out: no click
			out = append(out, int16(amp/1.25*env*tail*v*32767))
		}
		out = append(out, make([]int16, pause)...)
	}
	return append(out, make([]int16, rate/2)...)
}

// SpeechWAV speaks text with s and returns it as a WAV file, after the
// attention tone when tone is set, ready to import as a media item.
func SpeechWAV(ctx context.Context, s Synthesizer, text string, tone bool) ([]byte, error) {
	pcm, rate, err := s.Synthesize(ctx, text)
	if err != nil {
		return nil, err
	}
	if tone {
		pcm = append(AttentionTone(rate), pcm...)
	}
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, pcm, rate, 1); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
