package daemon

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
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
	// A request whose body never comes: the server's "100 Continue" says
	// its handler is running, blocked reading the body, so a graceful
	// shutdown alone would wait for it.
	req := "POST /api/v1/areas HTTP/1.1\r\nHost: loa\r\nAuthorization: Bearer " + m.AdminToken +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n{"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "100") {
		t.Fatalf("the server did not start the request: %q, %v", line, err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close with a stalled request: %v", err)
	}
	// Closed by the controller: EOF, or a reset when the request's bytes
	// were still unread; only our own deadline means it stayed open.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := io.ReadAll(conn); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the stalled connection was not closed by the controller: %v", err)
	}
}
