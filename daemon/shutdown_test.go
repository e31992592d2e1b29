package daemon

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
)

// Shutdown ends an alert's live report stream (which otherwise lasts until
// the alert ends) by its request's context, not by closing its connection
// after the grace period: the client sees the stream end cleanly.
func TestCloseEndsStreams(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	bulletin := s.upload(media.Tone(600, 48000, 20*time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertPriority, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"p"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", s.m.URL()+"/api/v1/alerts/"+al.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.api.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, "id:") {
		t.Fatalf("first line of the stream %q, %v", line, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.m.Close() }()
	// A stream ended by its handler ends its chunked body properly; one
	// cut by closing the connection is an unexpected EOF.
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Errorf("the stream was cut, not ended, at shutdown: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
}
