package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/store"
)

// busy is a refusal that may succeed later, as the transcode pool's.
type busy struct{ err *loa.Error }

func (b busy) Error() string             { return b.err.Error() }
func (b busy) Unwrap() error             { return b.err }
func (b busy) RetryAfter() time.Duration { return 30 * time.Second }

// A full transcode queue is 503 with Retry-After and the usual JSON error.
func TestUploadRefusedWhenTranscoderBusy(t *testing.T) {
	e := newEnv(t)
	e.media.refuse = busy{loa.Errorf(loa.EUNAVAILABLE, "the transcoder is busy; try again later")}
	r := e.upload(e.opA, nil, "x.wav", "RIFF....WAVE")
	wantError(t, r, http.StatusServiceUnavailable, "unavailable", "busy")
	if got := r.header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30", got)
	}
	// Other unavailable errors promise nothing.
	e.media.refuse = loa.Errorf(loa.EUNAVAILABLE, "media store closed")
	r = e.upload(e.opA, nil, "x.wav", "RIFF....WAVE")
	wantError(t, r, http.StatusServiceUnavailable, "unavailable")
	if got := r.header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After %q on an error that has none", got)
	}
}

// An ordinary request must be read, handled and answered within
// RequestTimeout: a client that sends half a body and stalls is cut off
// instead of holding a connection and a handler forever.
func TestStalledRequestBodyIsCut(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	secret, err := db.CreateToken(context.Background(), &loa.Token{Name: "admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&api.Server{Areas: db, Tokens: db, Audit: db, RequestTimeout: time.Second}).Handler())
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST /api/v1/areas HTTP/1.1\r\nHost: loa\r\nAuthorization: Bearer " + secret +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	// Our own deadline is far past the server's: reaching it means the
	// server kept the stalled request.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server still waits for the rest of the body")
	}

	// A request that comes whole is answered as before.
	r, err := http.NewRequest("POST", srv.URL+"/api/v1/areas", strings.NewReader(`{"id":"p","name":"P","kind":"province"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+secret)
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("a whole request: %d", res.StatusCode)
	}
}

// An event stream outlives the ordinary request deadline: a request
// started with it and stalled is cut, and the stream still delivers.
func TestStreamOutlivesRequestDeadline(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	secret, err := db.CreateToken(context.Background(), &loa.Token{Name: "admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	alarms := newFakeAlarms()
	srv := httptest.NewServer((&api.Server{Areas: db, Tokens: db, Audit: db, Alarms: alarms, RequestTimeout: time.Second}).Handler())
	defer srv.Close()

	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/alarms/stream?access_token="+secret, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	for alarms.watching() == 0 {
		time.Sleep(time.Millisecond)
	}

	// A request stalled after the stream started: once the server cuts
	// it, the ordinary deadline has passed for the stream too.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("POST /api/v1/areas HTTP/1.1\r\nHost: loa\r\nAuthorization: Bearer " + secret +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	io.ReadAll(conn)

	alarms.raise("late", "dev-1", "a-1", loa.AlarmOffline)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"late"`) {
			return
		}
	}
	t.Fatalf("the stream ended at the ordinary deadline: %v", sc.Err())
}
