package firmwaresim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// enrolServer answers "not claimed yet" notYet times, then the answer
// signed with code (changed by tamper, if set), then 410.
type enrolServer struct {
	code   string
	notYet int32
	ans    protocol.EnrolResponse
	tamper func(*protocol.EnrolResponse)
	polls  atomic.Int32
	served atomic.Bool
}

func (s *enrolServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.polls.Add(1)
	var req protocol.EnrolRequest
	if r.URL.Path != protocol.EnrolPath || json.NewDecoder(r.Body).Decode(&req) != nil || req.ClaimCode != s.code {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	switch {
	case n <= s.notYet:
		w.Header().Set("Retry-After", "30") // capped by the test's MaxWait
		http.Error(w, `{"error":"not claimed yet","code":"not_found"}`, http.StatusNotFound)
	case s.served.Swap(true):
		http.Error(w, `{"error":"used","code":"gone"}`, http.StatusGone)
	default:
		a := s.ans
		protocol.SignEnrolResponse(s.code, &a)
		if s.tamper != nil {
			s.tamper(&a)
		}
		json.NewEncoder(w).Encode(a)
	}
}

func newEnrolServer(t *testing.T, notYet int32) (*enrolServer, *httptest.Server) {
	s := &enrolServer{code: protocol.NewClaimCode(), notYet: notYet, ans: protocol.EnrolResponse{
		DeviceID: "rx-9", Password: "0123456789abcdef0123456789abcdef", MQTTURL: "tcp://127.0.0.1:1883",
		MQTTURLs: []string{"tcp://127.0.0.1:1883", "tcp://127.0.0.1:1884"}, CAPEM: testCAPEM(t)}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// The box polls until claimed, keeps its credentials and CA, and a
// restart uses them without asking again.
func TestEnrolPollsThenKeeps(t *testing.T) {
	s, srv := newEnrolServer(t, 2)
	dir := filepath.Join(t.TempDir(), "state")
	cfg := EnrolConfig{URL: srv.URL, ClaimCode: s.code, StateDir: dir, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond, Logger: quiet}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	e, err := Enrol(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.DeviceID != "rx-9" || e.Password != s.ans.Password || e.MQTTURL != s.ans.MQTTURL || s.polls.Load() != 3 {
		t.Fatalf("enrolment %+v after %d polls", e, s.polls.Load())
	}
	if ca, err := os.ReadFile(filepath.Join(dir, EnrolCAFile)); err != nil || string(ca) != s.ans.CAPEM {
		t.Errorf("kept CA %q, %v", ca, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, EnrolStateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file %v, %v: want mode 0600", fi, err)
	}
	rc, err := e.Config(Config{Decode: true})
	if err != nil || rc.ID != "rx-9" || rc.Password != e.Password || rc.CA == nil || !rc.Decode ||
		!slices.Equal(rc.Brokers, s.ans.MQTTURLs) {
		t.Errorf("receiver config %+v, %v", rc, err)
	}

	// A restart: the kept enrolment, no request.
	again, err := Enrol(ctx, cfg)
	if err != nil || !reflect.DeepEqual(again, e) || s.polls.Load() != 3 {
		t.Errorf("restart enrolled again: %+v, %v, %d polls", again, err, s.polls.Load())
	}
	// Another box with the same (used) code: told so, stops.
	cfg.StateDir = t.TempDir()
	if _, err := Enrol(ctx, cfg); !errors.Is(err, ErrClaimUsed) {
		t.Errorf("a used code: %v, want ErrClaimUsed", err)
	}
}

// An answer whose mac does not match the code is refused; nothing is kept.
func TestEnrolRefusesTamperedAnswer(t *testing.T) {
	for name, tamper := range map[string]func(*protocol.EnrolResponse){
		"broker":  func(a *protocol.EnrolResponse) { a.MQTTURL = "tcp://evil.example:1883" },
		"brokers": func(a *protocol.EnrolResponse) { a.MQTTURLs = append(a.MQTTURLs, "tcp://evil.example:1883") },
		"ca": func(a *protocol.EnrolResponse) {
			a.CAPEM = "-----BEGIN CERTIFICATE-----\nEVIL\n-----END CERTIFICATE-----\n"
		},
		"resigned with another code": func(a *protocol.EnrolResponse) {
			protocol.SignEnrolResponse(protocol.NewClaimCode(), a)
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, srv := newEnrolServer(t, 0)
			s.tamper = tamper
			dir := t.TempDir()
			_, err := Enrol(context.Background(), EnrolConfig{URL: srv.URL, ClaimCode: s.code, StateDir: dir, Logger: quiet})
			if !errors.Is(err, protocol.ErrEnrolMAC) {
				t.Fatalf("tampered answer: %v, want ErrEnrolMAC", err)
			}
			if files, _ := os.ReadDir(dir); len(files) != 0 {
				t.Errorf("kept %v from a tampered answer", files)
			}
		})
	}
}

// testCAPEM is a fresh self-signed CA certificate, PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test station CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
