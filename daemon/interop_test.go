package daemon

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

// TestInteropFFmpegFromSDP plays a session with ffmpeg, a receiver no one
// here wrote, from the SDP the API returns: SRTP under the listener's own
// SDES key (ffmpeg's SDP reader decrypts AES_CM_128_HMAC_SHA1_80), so the
// audio checks below pass only if it decrypted every packet.
func TestInteropFFmpegFromSDP(t *testing.T) {
	ffmpeg := loatest.Tool(t, "ffmpeg")
	// With the SNTP responder on, the SDP names it as the reference clock
	// (RFC 7273), which ffmpeg must take in its stride.
	s := startSystem(t, systemOpts{receivers: 2, configure: func(c *Config) { c.NTPAddr = "127.0.0.1:0" }})
	ctx := context.Background()
	const length = 6 * time.Second
	src := testSignal(length)
	med := s.upload(src, 48000)
	sess := s.play(med.ID, "a")

	port := loatest.FreePort(t, "udp")
	sdp, err := s.api.SDP(ctx, sess.ID, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("sdp: %v", err)
	}
	if !strings.Contains(sdp, " RTP/SAVP 111\r\n") || !strings.Contains(sdp, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Fatalf("the SDP offers no SRTP:\n%s", sdp)
	}
	if !strings.Contains(sdp, "\r\na=ts-refclk:ntp=127.0.0.1:") || !strings.Contains(sdp, "\r\na=mediaclk:direct=") {
		t.Fatalf("the SDP states no timeline (RFC 7273):\n%s", sdp)
	}
	dir := t.TempDir()
	sdpFile, out := filepath.Join(dir, "session.sdp"), filepath.Join(dir, "out.wav")
	os.WriteFile(sdpFile, []byte(sdp), 0o644)
	cctx, cancel := context.WithTimeout(ctx, length+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, ffmpeg, "-hide_banner", "-loglevel", "warning", "-nostdin",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdpFile,
		"-t", fmt.Sprint((length + 5*time.Second).Seconds()), "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", out)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	// The stream is already running: count the packets sent before ffmpeg
	// had its socket, and expect the rest.
	var missed uint64
	for !udpPortBound(t, port) {
		if cctx.Err() != nil {
			t.Fatalf("ffmpeg never listened on %d: %s", port, output.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, ok := s.m.Engine.Status(sess.ID); ok {
		missed = st.Sent
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s\nSDP:\n%s", err, output.String(), sdp)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := media.ReadWAV16Mono(data)
	if err != nil || rate != 48000 {
		t.Fatalf("ffmpeg output: %v (rate %d)", err, rate)
	}
	got := time.Duration(len(pcm)) * time.Second / 48000
	want := time.Duration(med.Frames-int(missed)) * 20 * time.Millisecond
	if math.Abs(float64(got-want)) > 0.1*float64(want) {
		t.Errorf("ffmpeg wrote %v of audio, want %v ±10%%", got, want)
	}
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	rms := math.Sqrt(sum / float64(max(len(pcm), 1)))
	if rms < 1000 {
		t.Errorf("ffmpeg's audio is near silent: RMS %.0f", rms)
	}
	if c := bestCorrelation(src[min(int(missed)*960, len(src)):], pcm); c < 0.9 {
		t.Errorf("ffmpeg's audio correlates %.3f with the source, want ≥ 0.9", c)
	}
	t.Logf("ffmpeg played %v (expected %v: it joined after %d packets), RMS %.0f", got, want, missed, rms)
}

// TestSystemExternalMosquitto runs the controller and receivers through a
// real Mosquitto broker instead of the embedded one.
func TestSystemExternalMosquitto(t *testing.T) {
	port := loatest.FreePort(t, "tcp")
	url := loatest.StartMosquitto(t, t.TempDir(), port,
		fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port))

	s := startSystem(t, systemOpts{receivers: 6, mqttURL: url})
	if s.m.Broker != nil {
		t.Fatal("the embedded broker started although an external one was given")
	}
	src := testSignal(3 * time.Second)
	med := s.upload(src, 48000)
	sess := s.play(med.ID, "a")
	s.finish(sess, med.Duration, "a")
	for _, r := range s.byArea["a"] {
		st, _ := r.Session(sess.ID)
		if float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
			t.Errorf("%s decoded %d of %d frames through Mosquitto", r.ID(), st.Decoded, med.Frames)
		}
		if c := bestCorrelation(src, r.PCM(sess.ID)); c < 0.9 {
			t.Errorf("%s: correlation %.3f", r.ID(), c)
		}
	}
	for _, r := range s.byArea["b"] {
		if st, ok := r.Session(sess.ID); ok && st.Received > 0 {
			t.Errorf("%s outside the target received %d packets", r.ID(), st.Received)
		}
	}
}

// udpPortBound reports whether some socket on this machine is bound to the
// UDP port, from /proc/net/udp (no probe socket that could race ffmpeg).
func udpPortBound(t *testing.T, port int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatalf("cannot tell when ffmpeg listens: %v", err)
	}
	want := fmt.Sprintf(":%04X ", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasSuffix(fields[1]+" ", want) {
			return true
		}
	}
	return false
}
