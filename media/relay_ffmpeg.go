package media

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// relayInput is one source URL of a relay, decoded by a supervised ffmpeg
// child to 48 kHz mono s16le: when the child exits it is started again
// after a back-off that doubles up to maxBackoff (and starts over once a
// child has run a while). Its stderr goes to the log, rate-limited.
type relayInput struct {
	url    string
	ffmpeg string
	logger *slog.Logger
	onPCM  func(pcm []float32) // called from the reading goroutine

	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	started     time.Time // when this input was started
	lastData    time.Time // when audio last came
	silentSince time.Time // start of the current run of silence; zero while loud
	loudSince   time.Time // start of the current run without stall or long silence
	levelDB     float64   // RMS of the last chunk, dBFS
	codec       string    // what ffmpeg said the source is
	kbps        int
	silenceDB   float64
	restarts    int
}

const (
	minBackoff  = 500 * time.Millisecond
	maxBackoff  = 8 * time.Second
	stableRun   = 30 * time.Second // a child that ran this long resets the back-off
	stderrBurst = 10               // stderr lines logged per stderrEvery
	stderrEvery = time.Minute
	ioTimeout   = 10 * time.Second // ffmpeg gives up on a silent connection
	startGrace  = 10 * time.Second // at least this for a source's first audio
)

func startRelayInput(url, ffmpeg string, silenceDB float64, logger *slog.Logger, onPCM func([]float32)) *relayInput {
	ctx, cancel := context.WithCancel(context.Background())
	in := &relayInput{url: url, ffmpeg: ffmpeg, logger: logger, onPCM: onPCM, cancel: cancel,
		done: make(chan struct{}), started: time.Now(), silenceDB: silenceDB, levelDB: math.Inf(-1)}
	go in.supervise(ctx)
	return in
}

// stop ends the child and waits for it.
func (in *relayInput) stop() {
	in.cancel()
	<-in.done
}

func (in *relayInput) supervise(ctx context.Context) {
	defer close(in.done)
	backoff := minBackoff
	for {
		began := time.Now()
		err := in.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > stableRun {
			backoff = minBackoff
		}
		in.mu.Lock()
		in.restarts++
		in.mu.Unlock()
		in.logger.Warn("relay source ended; restarting", "url", in.url, "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// ffmpegArgs decodes rawURL to 48 kHz mono s16le on stdout. Only network
// protocols are allowed (no file: an HLS playlist cannot point ffmpeg at
// the controller's files); an sdp:// URL is an SDP description fetched
// over HTTP.
func ffmpegArgs(rawURL string) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
		"-protocol_whitelist", "http,https,tcp,tls,crypto,rtmp,rtmps,rtp,udp,httpproxy"}
	u, err := url.Parse(rawURL)
	if err == nil {
		switch u.Scheme {
		case "http", "https":
			args = append(args, "-rw_timeout", strconv.Itoa(int(ioTimeout/time.Microsecond)))
		case "sdp":
			u.Scheme = "http"
			rawURL = u.String()
			args = append(args, "-rw_timeout", strconv.Itoa(int(ioTimeout/time.Microsecond)), "-f", "sdp")
		}
	}
	return append(args, "-i", rawURL, "-vn", "-ac", "1", "-ar", strconv.Itoa(protocol.ClockRate), "-f", "s16le", "pipe:1")
}

var (
	reAudio = regexp.MustCompile(`Audio: ([A-Za-z0-9_]+)`)
	reKbps  = regexp.MustCompile(`(\d+) kb/s`)
)

func (in *relayInput) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, in.ffmpeg, ffmpegArgs(in.url)...)
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go in.logStderr(stderr)
	r := bufio.NewReaderSize(stdout, 8192)
	raw := make([]byte, 2*protocol.FrameSamples)
	pcm := make([]float32, protocol.FrameSamples)
	for {
		n, err := io.ReadFull(r, raw)
		n &^= 1
		if n > 0 {
			var sum float64
			for i := 0; i < n/2; i++ {
				v := float32(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 32768
				pcm[i] = v
				sum += float64(v) * float64(v)
			}
			in.heard(10*math.Log10(sum/float64(n/2)+1e-20), time.Now())
			in.onPCM(pcm[:n/2])
		}
		if err != nil {
			werr := cmd.Wait()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if werr != nil {
					return werr
				}
				return io.EOF
			}
			return err
		}
	}
}

// heard records a chunk's level.
func (in *relayInput) heard(db float64, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	gap := now.Sub(in.lastData) > time.Second
	in.lastData, in.levelDB = now, db
	if db < in.silenceDB {
		if in.silentSince.IsZero() || gap {
			in.silentSince = now
		}
		in.loudSince = time.Time{}
	} else {
		in.silentSince = time.Time{}
		if in.loudSince.IsZero() || gap {
			in.loudSince = now // sound flows (again)
		}
	}
}

func (in *relayInput) logStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	var window time.Time
	logged, dropped := 0, 0
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		in.mu.Lock()
		if m := reAudio.FindStringSubmatch(line); m != nil && in.codec == "" {
			in.codec = m[1]
			if k := reKbps.FindStringSubmatch(line); k != nil {
				in.kbps, _ = strconv.Atoi(k[1])
			}
		}
		in.mu.Unlock()
		if now := time.Now(); now.Sub(window) > stderrEvery {
			if dropped > 0 {
				in.logger.Info("ffmpeg lines not logged", "url", in.url, "lines", dropped)
			}
			window, logged, dropped = now, 0, 0
		}
		if logged < stderrBurst {
			in.logger.Info("ffmpeg", "url", in.url, "line", line)
			logged++
		} else {
			dropped++
		}
	}
}

// inputHealth is what the failover judges an input by.
type inputHealth struct {
	started, lastData, silentSince, loudSince time.Time
	levelDB                                   float64
	codec                                     string
	kbps                                      int
}

func (in *relayInput) health() inputHealth {
	in.mu.Lock()
	defer in.mu.Unlock()
	return inputHealth{started: in.started, lastData: in.lastData, silentSince: in.silentSince,
		loudSince: in.loudSince, levelDB: in.levelDB, codec: in.codec, kbps: in.kbps}
}

// failed reports whether the input stalled (no data for stall, or, from
// its start when it never gave any, for twice that and at least
// startGrace) or was silent for silence.
func (h inputHealth) failed(now time.Time, stall, silence time.Duration) (bool, string) {
	last, bound := h.lastData, stall
	if last.IsZero() {
		last, bound = h.started, max(2*stall, startGrace) // connecting, starting the child and its decoder take a while
	}
	if now.Sub(last) > bound {
		return true, "stalled"
	}
	if !h.silentSince.IsZero() && now.Sub(h.silentSince) > silence {
		return true, "silent"
	}
	return false, ""
}

// good reports whether the input has given sound, not silence, for at
// least d.
func (h inputHealth) good(now time.Time, d time.Duration) bool {
	return !h.lastData.IsZero() && now.Sub(h.lastData) < time.Second &&
		h.silentSince.IsZero() && !h.loudSince.IsZero() && now.Sub(h.loudSince) >= d
}
