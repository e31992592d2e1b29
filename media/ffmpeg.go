package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// ffmpegInput is an upload ffmpeg reads as its stdin: a regular file, so
// that demuxers can seek (a phone's M4A keeps its index after the audio,
// which a pipe cannot reach). ffmpeg opens it anew through /dev/stdin, so
// each pass reads from the start.
type ffmpegInput struct {
	f       *os.File
	cleanup func()
}

// newFFmpegInput returns in as a file: the spooled temporary file itself
// when it is one, else a copy in an unlinked temporary file.
func newFFmpegInput(ctx context.Context, in io.ReaderAt, size int64) (*ffmpegInput, error) {
	if f := fileOf(in, 0, size); f != nil {
		return &ffmpegInput{f: f, cleanup: func() {}}, nil
	}
	f, err := os.CreateTemp("", "loa-decode-*")
	if err != nil {
		return nil, spoolError(err)
	}
	// Unlinked at once, like the spool: nothing is left if we are killed.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, spoolError(err)
	}
	if err := copyCtx(ctx, f, io.NewSectionReader(in, 0, size)); err != nil {
		f.Close()
		return nil, err
	}
	return &ffmpegInput{f: f, cleanup: func() { f.Close() }}, nil
}

// fileOf unwraps section readers down to an *os.File that holds exactly
// the bytes [off, off+size) as the whole file, or returns nil.
func fileOf(in io.ReaderAt, off, size int64) *os.File {
	switch r := in.(type) {
	case *os.File:
		st, err := r.Stat()
		if err != nil || !st.Mode().IsRegular() || off != 0 || st.Size() != size {
			return nil
		}
		return r
	case *Spooled:
		return fileOf(r.SectionReader, off, size)
	case *io.SectionReader:
		outer, o, n := r.Outer()
		if off+size > n {
			return nil
		}
		return fileOf(outer, o+off, size)
	}
	return nil
}

// ffmpegSource decodes a file with a one-shot ffmpeg child to signed
// 16-bit 48 kHz mono on its stdout. Closing it kills the child if it is
// still running and waits for it.
type ffmpegSource struct {
	f      format
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    *bufio.Reader
	stderr *stderrLog
	buf    []byte
	done   bool
	waited sync.Once
	err    error // of Wait
}

// startFFmpeg runs bin on in with f's demuxer forced (no probing, no
// playlists: only the file itself may be read), the first audio track
// downmixed and resampled by ffmpeg, and no more than maxDur and one frame
// written: past that the caller refuses the file.
func startFFmpeg(ctx context.Context, bin string, f format, in *os.File, maxDur time.Duration) (*ffmpegSource, error) {
	if bin == "" {
		bin = "ffmpeg"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, loa.Errorf(loa.EUNSUPPORTED, "the file looks like %s, which this station decodes with ffmpeg, and ffmpeg is not installed: upload WAV, MP3 or Ogg Opus", f.what)
	}
	cctx, cancel := context.WithCancel(ctx)
	limit := maxDur + protocol.FrameDuration
	cmd := exec.CommandContext(cctx, path,
		"-hide_banner", "-nostdin", "-nostats", "-threads", "1",
		"-protocol_whitelist", "file", "-format_whitelist", f.demuxer, "-f", f.demuxer,
		"-i", "file:/dev/stdin",
		"-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", strconv.Itoa(protocol.ClockRate),
		"-t", strconv.FormatFloat(limit.Seconds(), 'f', 3, 64), "-f", "s16le", "pipe:1")
	cmd.Stdin = in
	cmd.WaitDelay = 5 * time.Second
	stderr := &stderrLog{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("media: ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	return &ffmpegSource{f: f, cmd: cmd, cancel: cancel, out: bufio.NewReaderSize(out, 64<<10), stderr: stderr}, nil
}

func (s *ffmpegSource) rate() int     { return protocol.ClockRate }
func (s *ffmpegSource) channels() int { return 1 }

func (s *ffmpegSource) read(p []float32) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if cap(s.buf) < 2*len(p) {
		s.buf = make([]byte, 2*len(p))
	}
	b := s.buf[:2*len(p)]
	n, err := io.ReadFull(s.out, b)
	n /= 2
	for i := range n {
		p[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:]))) / 32768
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		s.done = true
		if werr := s.wait(); werr != nil {
			return 0, werr
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
	if err != nil {
		return n, fmt.Errorf("media: read ffmpeg output: %w", err)
	}
	return n, nil
}

// wait reaps the child once and turns a failure into an error that says
// what ffmpeg found wrong with the file.
func (s *ffmpegSource) wait() error {
	s.waited.Do(func() {
		err := s.cmd.Wait()
		s.cancel()
		if err != nil {
			s.err = s.failure(err)
		}
	})
	return s.err
}

// Close stops the child (killed if it is still decoding) and reaps it.
func (s *ffmpegSource) Close() error {
	s.cancel()
	s.wait()
	return nil
}

func (s *ffmpegSource) failure(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("media: ffmpeg: %w", err)
	}
	log := s.stderr.String()
	why := lastError(log)
	switch {
	case strings.Contains(log, "matches no streams"):
		return loa.Errorf(loa.EUNSUPPORTED, "the file (%s) has no sound track", s.f.what)
	case strings.Contains(log, "Decoder (codec") && strings.Contains(log, "not found"),
		strings.Contains(log, "decoding for stream") && strings.Contains(log, "not supported"):
		return loa.Errorf(loa.EUNSUPPORTED, "the file (%s) holds sound in an encoding ffmpeg cannot decode: %s", s.f.what, why)
	}
	return loa.Errorf(loa.EINVALID, "the file looks like %s but ffmpeg cannot decode it: %s", s.f.what, why)
}

// decoder names the codec ffmpeg decoded, from its "Stream mapping" lines:
// "ffmpeg:aac", "ffmpeg:flac", "ffmpeg:vorbis"…
func (s *ffmpegSource) decoder() string {
	if m := streamMapping.FindStringSubmatch(s.stderr.String()); m != nil {
		return "ffmpeg:" + m[1]
	}
	return "ffmpeg"
}

// streamMapping matches "Stream #0:1 -> #0:0 (aac (native) -> pcm_s16le (native))".
var streamMapping = regexp.MustCompile(`Stream #0:\d+ -> #0:0 \(([A-Za-z0-9_]+) `)

// lastError picks the line of ffmpeg's log that says what went wrong: the
// last one that is not indented (stream details) or a generic epilogue.
func lastError(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(lines[i], " ") || l == "Conversion failed!" || strings.HasPrefix(l, "To ignore this") {
			continue
		}
		// "file:/dev/stdin: Invalid data…" names our plumbing, not the upload.
		l = strings.TrimPrefix(l, "file:/dev/stdin: ")
		if len(l) > 200 {
			l = l[:200] + "…"
		}
		return l
	}
	return "no reason given"
}

// stderrLog keeps the head of ffmpeg's log (the stream mapping, the first
// errors) and its tail (the final error), whatever a damaged file makes it
// print in between.
type stderrLog struct {
	mu         sync.Mutex
	head, tail []byte
	cut        bool // the tail lost its start
}

const stderrKeep = 16 << 10

func (l *stderrLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if room := stderrKeep - len(l.head); room > 0 {
		k := min(room, len(p))
		l.head = append(l.head, p[:k]...)
		p = p[k:]
	}
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - stderrKeep; over > 0 {
		l.tail = append(l.tail[:0], l.tail[over:]...)
		l.cut = true
	}
	return n, nil
}

func (l *stderrLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cut {
		return string(l.head) + string(l.tail)
	}
	tail := l.tail
	if i := bytes.IndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:] // whole lines only
	}
	return string(l.head) + "\n…\n" + string(tail)
}
