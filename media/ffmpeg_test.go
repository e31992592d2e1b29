package media

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// Formats Loa has no decoder of its own for go through ffmpeg and come out
// like the others: the tone, its length, the target loudness.
func TestTranscodeViaFFmpeg(t *testing.T) {
	const secs = 2.0
	wav := wavFile(t, tone(44100, 2, secs, 1000, 0.3), 44100, 2, 16)
	for _, c := range []struct {
		name, ext, format, decoder string
		args                       []string
		tol                        float64 // seconds the length may grow by
	}{
		// ffmpeg's MP4 muxer trims the AAC encoder's delay but not its
		// padding at the end.
		{"m4a aac", "m4a", "mp4", "ffmpeg:aac", []string{"-c:a", "aac", "-b:a", "96k"}, 0.05},
		{"flac", "flac", "flac", "ffmpeg:flac", nil, 0},
		{"ogg vorbis", "ogg", "ogg", "ffmpeg:vorbis", []string{"-c:a", "libvorbis"}, 0},
		{"wma", "wma", "wma", "ffmpeg:wmav2", []string{"-c:a", "wmav2", "-b:a", "128k"}, 0.1},
		// A video: the sound is the second stream.
		{"mkv video", "mkv", "matroska", "ffmpeg:flac", []string{"-f", "lavfi", "-i", "color=s=16x16:d=" + strconv.Itoa(int(secs)),
			"-map", "1:v", "-map", "0:a", "-c:v", "mpeg4", "-c:a", "flac"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := ffmpegFile(t, wav, c.ext, c.args...)
			info, out := transcode(t, in, Options{})
			if info.Decoder != c.decoder {
				t.Errorf("Decoder = %q, want %q", info.Decoder, c.decoder)
			}
			checkToneLength(t, info, out, c.format, secs, c.tol)
		})
	}
	// Loa's own decoders say so.
	info, _ := transcode(t, wav, Options{})
	if info.Decoder != "builtin:wav" {
		t.Errorf("WAV: Decoder = %q", info.Decoder)
	}
}

// An AAC file that starts with an ID3 tag, as some recorders write, is
// not taken for an MP3.
func TestTranscodeID3AAC(t *testing.T) {
	wav := wavFile(t, tone(48000, 1, 1, 1000, 0.3), 48000, 1, 16)
	adts := ffmpegFile(t, wav, "aac", "-c:a", "aac", "-f", "adts")
	tag := []byte("ID3\x04\x00\x00\x00\x00\x00\x0a")
	tag = append(tag, make([]byte, 10)...)
	info, _ := transcode(t, append(tag, adts...), Options{})
	if info.Format != "aac" || info.Decoder != "ffmpeg:aac" {
		t.Errorf("Format %q, Decoder %q; want aac, ffmpeg:aac", info.Format, info.Decoder)
	}
}

func TestTranscodeFFmpegErrors(t *testing.T) {
	wav := wavFile(t, tone(48000, 1, 3, 1000, 0.3), 48000, 1, 16)
	flac := ffmpegFile(t, wav, "flac")
	video := ffmpegMake(t, "mp4", "-f", "lavfi", "-i", "color=s=16x16:d=1", "-c:v", "mpeg4")
	garbage := append([]byte("fLaC"), bytes.Repeat([]byte{0x5a, 0xa5, 0x13}, 400)...)
	before := leftovers(t)
	for _, c := range []struct {
		name string
		in   []byte
		opt  Options
		code string
		msg  string
	}{
		{"damaged", garbage, Options{}, loa.EINVALID, "looks like FLAC but ffmpeg cannot decode it"},
		{"no sound", video, Options{}, loa.EUNSUPPORTED, "has no sound track"},
		{"over MaxDuration", flac, Options{MaxDuration: time.Second}, loa.ETOOLARGE, "longer than the 1s limit"},
		{"no ffmpeg", flac, Options{FFmpeg: filepath.Join(t.TempDir(), "ffmpeg")}, loa.EUNSUPPORTED, "ffmpeg is not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Transcode(context.Background(), bytes.NewReader(c.in), &out, c.opt)
			wantCode(t, err, c.code)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
		})
	}
	// Cancelled while ffmpeg decodes: the child is killed and reaped.
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Transcode(ctx, bytes.NewReader(flac), writerFunc(func(p []byte) (int, error) {
		cancel()
		return len(p), nil
	}), Options{})
	if err != context.Canceled {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
	if after := leftovers(t); after != before {
		t.Errorf("left behind: %s (before: %s)", after, before)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// leftovers describes this process's ffmpeg children (running or not yet
// reaped) and open temporary files.
func leftovers(t *testing.T) string {
	t.Helper()
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); i > 0 && strings.Contains(s[:i], "(ffmpeg") && len(f) > 1 && f[1] == me {
			found = append(found, "child "+s[:i+1])
		}
	}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.Contains(l, "loa-decode-") {
			found = append(found, "open "+l)
		}
	}
	return strings.Join(found, ", ")
}

// checkToneLength is checkTone with a tolerance on the length, in seconds.
func checkToneLength(t *testing.T, info Info, out []byte, format string, secs, tol float64) {
	t.Helper()
	if tol <= 0.02 {
		checkTone(t, info, out, format, secs)
		return
	}
	if d := info.Duration.Seconds() - secs; d < -0.02 || d > tol {
		t.Errorf("Duration = %v, want %vs (+%vs)", info.Duration, secs, tol)
	}
	// The rest of checkTone's checks, on the length it has.
	checkTone(t, info, out, format, info.Duration.Seconds())
}

// ffmpegMake runs ffmpeg with args alone (lavfi sources) and returns the
// file it writes, named "out."+ext.
func ffmpegMake(t testing.TB, ext string, args ...string) []byte {
	t.Helper()
	name := filepath.Join(t.TempDir(), "out."+ext)
	cmd := exec.Command(needFFmpeg(t), append(append([]string{"-hide_banner", "-loglevel", "error"}, args...), "-y", name)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// detect names a format or refuses with EUNSUPPORTED, whatever the bytes;
// what goes to ffmpeg has its demuxer named.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{"fLaC", "\x00\x00\x00\x20ftypM4A ", "#!AMR\n", "OggS", "RIFF\x00\x00\x00\x00AVI ", "\xff\xf1\x50\x80", "\xff\xfd\x90\x00", "%PDF", "hello"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fm, err := detect(b)
		switch {
		case err != nil && loa.ErrorCode(err) != loa.EUNSUPPORTED:
			t.Fatalf("%q: %v", b, err)
		case err == nil && fm.name == "":
			t.Fatalf("%q: no format", b)
		case fm.ffmpeg() && fm.what == "":
			t.Fatalf("%q: %+v unnamed", b, fm)
		}
	})
}

// An upload past the in-memory spool reaches ffmpeg as the spool's own
// temporary file (no copy), and decodes the same.
func TestTranscodeFFmpegSpooledFile(t *testing.T) {
	const secs = 25.0
	aiff := ffmpegFile(t, wavFile(t, tone(48000, 2, secs, 1000, 0.3), 48000, 2, 16), "aiff")
	if len(aiff) <= spoolMemory {
		t.Fatalf("input %d bytes does not exceed the %d in-memory spool", len(aiff), spoolMemory)
	}
	up, err := Spool(context.Background(), struct{ io.Reader }{bytes.NewReader(aiff)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if fileOf(io.NewSectionReader(up, 0, up.Size()), 0, up.Size()) == nil {
		t.Fatal("the spooled upload is not seen as a file")
	}
	var out bytes.Buffer
	info, err := Transcode(context.Background(), up, &out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "aiff" || info.Decoder != "ffmpeg:pcm_s16be" || info.Duration != secs*time.Second {
		t.Errorf("Format %q, Decoder %q, Duration %v", info.Format, info.Decoder, info.Duration)
	}
}
