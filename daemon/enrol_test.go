package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

// pollEnrol is one enrolment request as a box sends it: no token.
func pollEnrol(t *testing.T, base, code string) (status int, body, retryAfter string) {
	t.Helper()
	b, _ := json.Marshal(protocol.EnrolRequest{ClaimCode: code})
	resp, err := http.Post(base+protocol.EnrolPath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got), resp.Header.Get("Retry-After")
}

// enrolBox enrols a simulated box with code and starts it as a receiver
// with what it was given; the test closes it.
func (s *system) enrolBox(code string) (firmwaresim.Enrolment, *firmwaresim.Receiver) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := firmwaresim.Enrol(ctx, firmwaresim.EnrolConfig{URL: s.m.URL(), ClaimCode: code, StateDir: s.t.TempDir(),
		MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond, Logger: testLogger(s.t)})
	if err != nil {
		s.t.Fatalf("enrol: %v", err)
	}
	cfg, err := e.Config(firmwaresim.Config{Decode: true, Logger: testLogger(s.t).With("receiver", e.DeviceID)})
	if err != nil {
		s.t.Fatal(err)
	}
	// The box was told the station key, under the enrolment's mac.
	if pub := s.m.StationKey.Public().(ed25519.PublicKey); !pub.Equal(cfg.StationKey) {
		s.t.Errorf("the enrolled box holds station key %x, want %x", cfg.StationKey, pub)
	}
	r := firmwaresim.NewReceiver(cfg)
	if err := r.Start(ctx); err != nil {
		s.t.Fatalf("the enrolled box: %v", err)
	}
	s.t.Cleanup(func() { r.Close() })
	return e, r
}

// playsIn plays med to area a and checks that r decoded it.
func (s *system) playsIn(med *loa.Media, r *firmwaresim.Receiver, a string) {
	s.t.Helper()
	sess := s.play(med.ID, a)
	s.finish(sess, med.Duration, a)
	if st, _ := r.Session(sess.ID); float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
		s.t.Errorf("%s decoded %d of %d frames: %+v", r.ID(), st.Decoded, med.Frames, st)
	}
}

// A technician claims a new box's code into a cluster; the box enrols
// once (a wrong code gets nothing and learns nothing; the code's second
// use gets 410), comes online with what it was given and plays. Swapping
// it for a new box moves the identity to the new box and has the broker
// refuse the old one at once.
func TestSystemClaimEnrolAndSwap(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1}) // rx-000, a neighbour in a1
	ctx := context.Background()
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "kỹ thuật xã A", "role": loa.RoleTechnician, "area_id": "a"}, &tok); err != nil {
		t.Fatal(err)
	}
	tech := api.NewClient(s.m.URL(), tok.Secret)

	code := protocol.NewClaimCode()
	st, early, ra := pollEnrol(t, s.m.URL(), code)
	st2, guess, ra2 := pollEnrol(t, s.m.URL(), protocol.NewClaimCode())
	if st != http.StatusNotFound || ra == "" || st2 != st || guess != early || ra2 != ra {
		t.Fatalf("before the claim %d %s (Retry-After %q); a guess %d %s (%q): want the same 404 with Retry-After", st, early, ra, st2, guess, ra2)
	}
	if err := tech.JSON(ctx, "POST", "/api/v1/devices/claims", map[string]any{"claim_code": code, "device_id": "rx-field",
		"area_id": "b1", "name": "Loa ngoài đồng"}, nil); !isStatus(err, http.StatusForbidden) {
		t.Errorf("claiming into another commune: %v, want 403", err)
	}
	if err := tech.JSON(ctx, "POST", "/api/v1/devices/claims", map[string]any{"claim_code": code, "device_id": "rx-field",
		"area_id": "a1", "name": "Loa ngoài đồng"}, nil); err != nil {
		t.Fatal(err)
	}
	// A guess after the claim still learns nothing.
	if st, body, _ := pollEnrol(t, s.m.URL(), protocol.NewClaimCode()); st != http.StatusNotFound || body != early {
		t.Errorf("a guess after the claim: %d %s", st, body)
	}

	first, box := s.enrolBox(code)
	if first.DeviceID != "rx-field" || first.CAPEM != string(s.m.CACertPEM()) || first.MQTTURL != s.m.MQTTURL() {
		t.Errorf("enrolment %+v", first)
	}
	waitOnlineAPI(t, s.api, "rx-field", true)
	if st, body, _ := pollEnrol(t, s.m.URL(), code); st != http.StatusGone {
		t.Errorf("the code's second use: %d %s, want 410", st, body)
	}
	ctxE, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := firmwaresim.Enrol(ctxE, firmwaresim.EnrolConfig{URL: s.m.URL(), ClaimCode: code, StateDir: t.TempDir(), Logger: testLogger(t)}); !errors.Is(err, firmwaresim.ErrClaimUsed) {
		t.Errorf("another box with the used code: %v, want ErrClaimUsed", err)
	}
	med := s.upload(testSignal(2*time.Second), 48000)
	s.byArea["a"] = append(s.byArea["a"], box)
	s.playsIn(med, box, "a")

	// The box dies; a new one takes its place.
	newCode := protocol.NewClaimCode()
	failures := s.m.Broker.Stats().AuthFailures
	var swap struct {
		Device api.DeviceView `json:"device"`
		Broker string         `json:"broker"`
	}
	if err := tech.JSON(ctx, "POST", "/api/v1/devices/rx-field/replace", map[string]string{"claim_code": newCode}, &swap); err != nil {
		t.Fatal(err)
	}
	if swap.Device.Credentials != loa.CredentialsRevoked {
		t.Errorf("after the swap claim the device shows %+v", swap.Device.Device)
	}
	waitOnlineAPI(t, s.api, "rx-field", false) // dropped at once
	s.waitAuthFailures(failures, "the swapped-out unit reconnecting")
	if _, err := s.startReceiver("rx-field", first.Password); err == nil {
		t.Fatal("the old unit's password still connects after the swap")
	}
	box.Kill()

	second, newBox := s.enrolBox(newCode)
	if second.DeviceID != "rx-field" || second.Password == first.Password {
		t.Fatalf("the new unit enrolled as %+v", second)
	}
	waitOnlineAPI(t, s.api, "rx-field", true)
	s.byArea["a"][len(s.byArea["a"])-1] = newBox
	s.playsIn(med, newBox, "a")

	var v api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/rx-field", nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.AreaID != "a1" || v.Name != "Loa ngoài đồng" || v.Credentials != loa.CredentialsActive || v.EnrolledAt.IsZero() || v.RotatedAt.IsZero() {
		t.Errorf("the device after the swap %+v", v.Device)
	}
	if _, err := s.startReceiver("rx-field", first.Password); err == nil {
		t.Error("the old unit's password connects after the new unit enrolled")
	}
}
