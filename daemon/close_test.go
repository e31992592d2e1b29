package daemon

import (
	"io"
	"net"
	"testing"
	"time"
)

// Close finishes even when an HTTP request never completes (a receiver's
// firmware download stalled on a weak link, a half-sent request): after
// the grace period its connection is closed and Close reports no error.
func TestCloseDoesNotWaitForStalledRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out the 5 s shutdown grace")
	}
	m := openMain(t, testConfig(t))
	conn, err := net.Dial("tcp", m.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers begun and never finished: the server counts the connection
	// active, so a graceful shutdown alone would wait for it.
	if _, err := conn.Write([]byte("GET /api/v1/areas HTTP/1.1\r\nHost: loa\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close with a stalled request: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the stalled connection was not closed by the controller: %v", err)
	}
}
