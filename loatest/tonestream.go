package loatest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
)

// ToneStream is an Icecast-like HTTP source for relay tests: each request
// gets an MP3 stream of a sine tone that ffmpeg generates at real rate
// (-re). Kill cuts every listener and refuses new ones until Revive.
type ToneStream struct {
	srv  *httptest.Server
	freq float64

	mu      sync.Mutex
	down    bool
	cancels map[int]context.CancelFunc
	next    int
}

// StartToneStream serves a freq Hz tone; it skips the test without ffmpeg.
func StartToneStream(tb testing.TB, freq float64) *ToneStream {
	tb.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Skip("ffmpeg not installed")
	}
	s := &ToneStream{freq: freq, cancels: make(map[int]context.CancelFunc)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(func() {
		s.Kill()
		s.srv.Close()
	})
	return s
}

// URL is the stream's address.
func (s *ToneStream) URL() string { return s.srv.URL + "/stream.mp3" }

// Kill cuts the listeners and refuses new ones, as a dead radio source.
func (s *ToneStream) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	for id, cancel := range s.cancels {
		cancel()
		delete(s.cancels, id)
	}
}

// Revive serves again.
func (s *ToneStream) Revive() {
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
}

func (s *ToneStream) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		http.Error(w, "source down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	id := s.next
	s.next++
	s.cancels[id] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, id)
		s.mu.Unlock()
		cancel()
	}()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%g:sample_rate=44100", s.freq),
		"-t", "600", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", "pipe:1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := cmd.Start(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer cmd.Wait()
	w.Header().Set("Content-Type", "audio/mpeg")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 4096)
	flusher, _ := w.(http.Flusher)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				cancel()
				io.Copy(io.Discard, out)
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil || ctx.Err() != nil {
			if ctx.Err() != nil {
				// Cut the connection rather than end the stream cleanly.
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
					}
				}
			}
			return
		}
	}
}
