package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// upload posts a multipart upload and returns the raw answer.
func rawUpload(t *testing.T, base, token, name string, data []byte) (*http.Response, map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/media", &buf)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil && res.StatusCode >= 300 {
		t.Fatalf("error answer is not JSON: %s", b)
	}
	return res, body
}

// silentOpus is d of silence as Ogg Opus: one frame encoded at the
// lowest rate, repeated, so 3 h is a few MB and costs no encoding time.
func silentOpus(t *testing.T, d time.Duration) []byte {
	t.Helper()
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppAudio)
	if err != nil {
		t.Fatal(err)
	}
	enc.SetBitrate(6000)
	pkt := make([]byte, 1000)
	n, err := enc.EncodeFloat32(make([]float32, protocol.FrameSamples), pkt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := media.NewOggWriter(&buf, 312)
	for range int(d / protocol.FrameDuration) {
		if err := w.WritePacket(pkt[:n], protocol.FrameSamples); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// floatWAV writes mono 32-bit float samples as a WAV file.
func floatWAV(x []float32, rate int) []byte {
	le := binary.LittleEndian
	h := []byte("RIFF")
	h = le.AppendUint32(h, uint32(36+4*len(x)))
	h = append(h, "WAVEfmt "...)
	h = le.AppendUint32(h, 16)
	h = le.AppendUint16(h, 3) // IEEE float
	h = le.AppendUint16(h, 1)
	h = le.AppendUint32(h, uint32(rate))
	h = le.AppendUint32(h, uint32(rate*4))
	h = le.AppendUint16(h, 4)
	h = le.AppendUint16(h, 32)
	h = append(h, "data"...)
	h = le.AppendUint32(h, uint32(4*len(x)))
	for _, v := range x {
		h = le.AppendUint32(h, math.Float32bits(v))
	}
	return h
}

// Uploads are bounded in decoded length and refused when damaged, with
// the usual JSON errors, and a full transcode queue is 503 with
// Retry-After: through the whole controller.
func TestSystemUploadLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.TranscodeWorkers, cfg.TranscodeQueue = 1, 1
	m := openMain(t, cfg)
	defer m.Close()
	base, tok := m.URL(), m.AdminToken

	t.Run("3 h of Opus in a few MB", func(t *testing.T) {
		in := silentOpus(t, 3*time.Hour)
		t.Logf("%.1f MB", float64(len(in))/1e6)
		res, body := rawUpload(t, base, tok, "long.opus", in)
		if res.StatusCode != http.StatusRequestEntityTooLarge || body["code"] != loa.ETOOLARGE ||
			!strings.Contains(body["error"], "3h0m0s long, over the 2h0m0s limit") {
			t.Errorf("got %d %v, want 413 naming the length and the 2 h limit", res.StatusCode, body)
		}
	})

	t.Run("NaN in a float WAV", func(t *testing.T) {
		x := make([]float32, 48000)
		for i := range x {
			x[i] = float32(0.3 * math.Sin(2*math.Pi*440*float64(i)/48000))
		}
		x[12345] = float32(math.NaN())
		res, body := rawUpload(t, base, tok, "nan.wav", floatWAV(x, 48000))
		if res.StatusCode != http.StatusBadRequest || body["code"] != loa.EINVALID || !strings.Contains(body["error"], "sample 12345 ") {
			t.Errorf("got %d %v, want 400 naming sample 12345", res.StatusCode, body)
		}
	})

	t.Run("truncated MP3", func(t *testing.T) {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			t.Skip("ffmpeg is not installed (make test installs it)")
		}
		dir := t.TempDir()
		wav, _, err := media.DemoProgramme(context.Background(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "in.wav"), wav, 0o644)
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", filepath.Join(dir, "in.wav"),
			"-c:a", "libmp3lame", "-b:a", "64k", filepath.Join(dir, "out.mp3")).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		mp3, _ := os.ReadFile(filepath.Join(dir, "out.mp3"))
		cut := len(mp3) - 100
		res, body := rawUpload(t, base, tok, "cut.mp3", mp3[:cut])
		if res.StatusCode != http.StatusBadRequest || body["code"] != loa.EINVALID ||
			!regexp.MustCompile(`truncated: frame \d+ at byte \d+ .* ends at byte `+strconv.Itoa(cut)).MatchString(body["error"]) {
			t.Errorf("got %d %v, want 400 naming the cut frame's offset", res.StatusCode, body)
		}
	})

	t.Run("full queue", func(t *testing.T) {
		// Two uploads whose bodies stall hold the worker and the queue.
		var wg sync.WaitGroup
		defer wg.Wait()
		for range 2 {
			pr, pw := io.Pipe()
			defer pw.Close()
			mw := multipart.NewWriter(pw)
			req, _ := http.NewRequest("POST", base+"/api/v1/media", pr)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			wg.Add(1)
			go func() {
				defer wg.Done()
				if res, err := http.DefaultClient.Do(req); err == nil {
					res.Body.Close()
				}
			}()
			fw, _ := mw.CreateFormFile("file", "slow.wav")
			fw.Write([]byte("RIFF"))
		}
		var wav bytes.Buffer
		media.EncodeWAV(&wav, media.AttentionTone(48000)[:48000], 48000, 1)
		var last map[string]string
		var retry string
		loatest.Eventually(t, 30*time.Second, func() bool {
			res, body := rawUpload(t, base, tok, "third.wav", wav.Bytes())
			last, retry = body, res.Header.Get("Retry-After")
			return res.StatusCode == http.StatusServiceUnavailable
		}, "a third upload is never refused while two hold the worker and the queue")
		if last["code"] != loa.EUNAVAILABLE || !strings.Contains(last["error"], "busy") {
			t.Errorf("refusal %v", last)
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 {
			t.Errorf("Retry-After %q, want seconds", retry)
		}
	})
}

// Headers and JSON bodies past their bounds are refused: 431 and 413.
func TestSystemHTTPRequestBounds(t *testing.T) {
	m := openMain(t, testConfig(t))
	defer m.Close()
	req, _ := http.NewRequest("GET", m.URL()+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+m.AdminToken)
	req.Header.Set("X-Padding", strings.Repeat("a", 100<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: %d, want 431", res.StatusCode)
	}

	c := api.NewClient(m.URL(), m.AdminToken)
	err = c.JSON(context.Background(), "POST", "/api/v1/areas", map[string]string{"id": "x", "name": strings.Repeat("a", 2<<20)}, nil)
	var ce *api.ClientError
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestEntityTooLarge || ce.Code != loa.ETOOLARGE {
		t.Errorf("a 2 MiB JSON body: %v, want 413 too_large", err)
	}
}

// floodChildEnv makes the test binary run TestSystemHTTPConnectionFlood's
// controller, under a low open-file limit.
const floodChildEnv = "LOA_TEST_FLOOD_CHILD"

// A flood of idle and keep-alive HTTP sockets, more than the controller
// has file descriptors, leaves the API and the embedded broker answering
// genuine clients: the HTTP listener takes at most a quarter of the fds,
// refuses the rest at once, and drops idle connections.
func TestSystemHTTPConnectionFlood(t *testing.T) {
	if os.Getenv(floodChildEnv) != "" {
		floodChild(t)
		return
	}
	if testing.Short() {
		t.Skip("-short: runs a controller in a child process")
	}
	const nofile, flood = 256, 600
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 4*flood {
		t.Skipf("this process may open %d files; the flood needs %d", rl.Cur, 4*flood)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestSystemHTTPConnectionFlood$", "-test.v")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+t.TempDir(), "LOA_TEST_NOFILE="+strconv.Itoa(nofile))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
		if t.Failed() {
			t.Logf("controller's log:\n%s", stderr.String())
		}
	}()
	var httpURL, mqttURL, token string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "FLOOD-READY %s %s %s", &httpURL, &mqttURL, &token); err == nil {
			break
		}
	}
	if token == "" {
		t.Fatalf("the child controller did not start:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	ctx := context.Background()
	c := api.NewClient(httpURL, token)
	if err := c.CreateArea(ctx, loa.Area{ID: "a", Name: "Tỉnh A", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	pw, err := c.CreateDevice(ctx, loa.Device{ID: "rx-1", AreaID: "a", Name: "rx-1"})
	if err != nil {
		t.Fatal(err)
	}

	http.DefaultTransport.(*http.Transport).CloseIdleConnections() // the checks below use new connections

	// The flood: half the sockets send nothing, half make one
	// unauthenticated request and keep the connection.
	host := strings.TrimPrefix(httpURL, "http://")
	var socks []net.Conn
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	reset := 0
	for i := range flood {
		s, err := net.Dial("tcp", host)
		if err != nil {
			reset++ // refused at the cap (a reset can reach the handshake)
			continue
		}
		socks = append(socks, s)
		if i%2 == 1 {
			s.Write([]byte("GET /healthz HTTP/1.1\r\nHost: loa\r\n\r\n"))
		}
	}
	t.Logf("%d flood sockets open, %d refused while connecting", len(socks), reset)

	// While every flood socket is still open on our side, a device
	// connects to the broker and an operator uses the API.
	loatest.Eventually(t, time.Minute, func() bool {
		opts := mqtt.NewClientOptions().AddBroker(mqttURL).SetClientID("rx-1").SetUsername("rx-1").SetPassword(pw).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		mc := mqtt.NewClient(opts)
		tok := mc.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return false
		}
		mc.Disconnect(0)
		return true
	}, "the broker never accepted a device during the HTTP flood")
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	loatest.Eventually(t, time.Minute, func() bool {
		req, _ := http.NewRequest("GET", httpURL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := fresh.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, "the API never answered a new connection during the HTTP flood")

	var metrics string
	if err := c.Do(ctx, "GET", "/metrics", "", nil, &metrics); err != nil {
		t.Fatal(err)
	}
	refused := regexp.MustCompile(`(?m)^loa_http_connections_refused_total (\d+)`).FindStringSubmatch(metrics)
	t.Logf("%s", regexp.MustCompile(`(?m)^loa_http_connections.*$`).FindAllString(metrics, -1))
	if refused == nil || refused[1] == "0" {
		t.Errorf("no connection was refused at the cap: %v", refused)
	}
}

// floodChild runs a controller under a low open-file limit with short
// HTTP timeouts, prints its addresses and serves until stdin closes.
func floodChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LOA_TEST_NOFILE"))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = os.Getenv(floodChildEnv)
	cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.HTTPHeaderTimeout, cfg.HTTPIdleTimeout = 2*time.Second, 2*time.Second
	cfg.LogLevel = "warn"
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fmt.Printf("FLOOD-READY %s %s %s\n", m.URL(), m.MQTTURL(), m.AdminToken)
	io.Copy(io.Discard, os.Stdin)
}
