package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// syncBuffer is written by run and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunWithCredsFile(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("# devices\ncli-1 pw1\ncli-2 pw2\n\ncli-3 pw3\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	type onlineStatus struct {
		id   string
		caps []string
	}
	online := make(chan onlineStatus, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("ctl"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Subscribe(protocol.DeviceFilter(protocol.KindStatus), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, err := protocol.DecodeStatus(m.Payload()); err == nil && s.Online {
			id, _, _ := protocol.ParseDeviceTopic(m.Topic())
			online <- onlineStatus{id, s.Caps}
		}
	})
	if tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	// A cluster's list: the first address has nobody listening, the
	// receivers move on to the second.
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	go func() {
		done <- run(ctx, []string{"-broker", dead + ", " + broker, "-creds", creds, "-loss", "0.1", "-seed", "5", "-v1", "2"}, &out, &errOut)
	}()
	seen := map[string]bool{}
	for len(seen) < 3 {
		select {
		case st := <-online:
			seen[st.id] = true
			// -v1 2: the first two speak contract v1 and announce nothing.
			if v2 := len(st.caps) > 0; v2 != (st.id == "cli-3") {
				t.Errorf("%s announces caps %q", st.id, st.caps)
			}
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, errOut.String())
		case <-time.After(20 * time.Second):
			t.Fatalf("online: %v\n%s", seen, errOut.String())
		}
	}
	// Online statuses go out before the fleet finished starting; stop only
	// once it says it did.
	for giveUp := time.Now().Add(20 * time.Second); !strings.Contains(errOut.String(), "receivers started"); {
		if time.Now().After(giveUp) {
			t.Fatalf("fleet never started:\n%s", errOut.String())
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "cli-1\tno sessions") {
		t.Fatalf("output:\n%s", out.String())
	}
	var sum struct {
		Receivers int                            `json:"receivers"`
		Decoding  int                            `json:"decoding"`
		Sessions  map[string]firmwaresim.Summary `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Receivers != 3 || sum.Decoding != 3 || len(sum.Sessions) != 0 {
		t.Errorf("summary %+v", sum)
	}
}

func TestProvision(t *testing.T) {
	var got []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/devices" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, body)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": body["id"], "area_id": body["area_id"], "password": "pw-" + body["id"]})
	}))
	defer srv.Close()

	devs, err := provision(context.Background(), srv.Client(), srv.URL+"/", "tok", "xa-1", "sim", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 || devs[2] != (device{ID: "sim-0003", Password: "pw-sim-0003"}) {
		t.Errorf("devices %+v", devs)
	}
	if len(got) != 3 || got[0]["id"] != "sim-0001" || got[0]["area_id"] != "xa-1" || got[0]["name"] == "" {
		t.Errorf("requests %+v", got)
	}
	if _, err := provision(context.Background(), srv.Client(), srv.URL, "wrong", "xa-1", "sim", 1); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}

	path := filepath.Join(t.TempDir(), "creds")
	if err := writeCreds(path, devs); err != nil {
		t.Fatal(err)
	}
	back, err := readCreds(path)
	if err != nil || len(back) != 3 || back[0] != devs[0] {
		t.Errorf("creds round trip: %+v, %v", back, err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-creds", "x", "-api", "http://x"},
		{"-creds", "x", "-loss", "2"},
		{"-creds", "x", "-firmware-version", "sim-1.0"},
		{"-claim", "MFRGGZDFMZTWQ2LKNNWG"},
		{"-claim", "MFRGGZDFMZTWQ2LKNNW1", "-enrol-url", "http://x"},
		{"-claim", "MFRGGZDFMZTWQ2LKNNWG,mfrggzdfmztwq2lknnwg", "-enrol-url", "http://x"},
		{"-claim", "MFRGGZDFMZTWQ2LKNNWG", "-enrol-url", "http://x", "-creds", "x"},
		{"-creds", "x", "-v1", "-1"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// -firmware-key and -firmware-version reach the receivers: with the key a
// firmware command gets past the key check to the version check, which
// compares with the version given.
func TestRunFirmwareFlags(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	dir := t.TempDir()
	creds, key := filepath.Join(dir, "creds"), filepath.Join(dir, "op.pub")
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte("fw-1 pw1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, protocol.EncodeFirmwarePublicKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := run(t.Context(), []string{"-broker", broker, "-creds", creds, "-firmware-key", filepath.Join(dir, "none.pub")}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "firmware key") {
		t.Errorf("missing key file: %v", err)
	}

	acks := make(chan protocol.Ack, 10)
	online := make(chan struct{}, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("ctl"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	for topic, h := range map[string]mqtt.MessageHandler{
		protocol.DeviceTopic("fw-1", protocol.KindAck): func(_ mqtt.Client, m mqtt.Message) {
			if a, err := protocol.DecodeAck(m.Payload()); err == nil {
				acks <- a
			}
		},
		protocol.DeviceTopic("fw-1", protocol.KindStatus): func(_ mqtt.Client, m mqtt.Message) {
			if s, err := protocol.DecodeStatus(m.Payload()); err == nil && s.Online {
				online <- struct{}{}
			}
		},
	} {
		if tok := c.Subscribe(topic, 1, h); tok.Wait() && tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	var errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-broker", broker, "-creds", creds, "-firmware-key", key, "-firmware-version", "2.0.0"}, io.Discard, &errOut)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-online:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("fw-1 never came online:\n%s", errOut.String())
	}
	args, _ := json.Marshal(protocol.FirmwareArgs{Version: "1.5.0", URL: "http://127.0.0.1:9/fw", Size: 10,
		SHA256: strings.Repeat("ab", 32), Sig: base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))})
	cmd, _ := json.Marshal(protocol.Command{ID: "f1", Op: protocol.OpFirmware, Exp: time.Now().Add(time.Minute).UnixMilli(), Args: args})
	if tok := c.Publish(protocol.DeviceTopic("fw-1", protocol.KindCmd), 1, false, cmd); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case a := <-acks:
		if a.State != protocol.AckFailed || a.Code != protocol.FWDowngrade || !strings.Contains(a.Msg, "running 2.0.0") {
			t.Errorf("firmware command acked %+v, want failed downgrade against 2.0.0", a)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no ack")
	}
}

// "firmware-sim image" writes what the simulated receivers install: its
// header names the version and health, and bad flags are refused.
func TestWriteImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rx.img")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"image", "-version", "1.4.2", "-o", path, "-size", "4096", "-unhealthy"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := firmwaresim.ParseImageHeader(img)
	if err != nil || h.Version != "1.4.2" || h.Healthy || len(img) != 4096 {
		t.Errorf("image header %+v (%v), %d bytes", h, err, len(img))
	}
	for _, args := range [][]string{
		{"image", "-o", path},
		{"image", "-version", "1.x", "-o", path},
		{"image", "-version", "1.4.2"},
		{"image", "-version", "1.4.2", "-o", path, "-size", "0"},
	} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// -claim: the receiver polls until its code is claimed, connects with the
// credentials it was given, and on the next run uses the kept ones
// without asking again.
func TestRunWithClaim(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	code := protocol.NewClaimCode()
	var polls, served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req protocol.EnrolRequest
		if r.URL.Path != protocol.EnrolPath || json.NewDecoder(r.Body).Decode(&req) != nil || req.ClaimCode != code {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if polls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"not claimed yet","code":"not_found"}`, http.StatusNotFound)
			return
		}
		if served.Add(1) > 1 {
			http.Error(w, `{"error":"used","code":"gone"}`, http.StatusGone)
			return
		}
		a := protocol.EnrolResponse{DeviceID: "claimed-1", Password: "pw", MQTTURL: broker}
		protocol.SignEnrolResponse(code, &a)
		json.NewEncoder(w).Encode(a)
	}))
	defer srv.Close()
	online := watchOnline(t, broker)
	state := t.TempDir()
	args := []string{"-claim", strings.ToLower(code[:10]) + "-" + code[10:], "-enrol-url", srv.URL, "-state", state}
	for boot := 1; boot <= 2; boot++ {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, args, &out, &errOut) }()
		select {
		case id := <-online:
			if id != "claimed-1" {
				t.Fatalf("boot %d: %s came online, want claimed-1", boot, id)
			}
		case err := <-done:
			t.Fatalf("boot %d: run returned early: %v\n%s", boot, err, errOut.String())
		case <-time.After(20 * time.Second):
			t.Fatalf("boot %d: never online\n%s", boot, errOut.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("boot %d: %v\n%s", boot, err, errOut.String())
		}
	}
	if polls.Load() != 2 || served.Load() != 1 {
		t.Errorf("%d polls, %d answers: want 2 polls (one before the claim) and one answer, none after the restart", polls.Load(), served.Load())
	}
}

// watchOnline sends the id of each device that publishes an online status.
func watchOnline(t *testing.T, broker string) <-chan string {
	t.Helper()
	online := make(chan string, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("ctl-watch"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(protocol.DeviceFilter(protocol.KindStatus), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, err := protocol.DecodeStatus(m.Payload()); err == nil && s.Online {
			id, _, _ := protocol.ParseDeviceTopic(m.Topic())
			select {
			case online <- id:
			default:
			}
		}
	})
	if tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return online
}
