package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// sseKeepAlive is how often an idle event stream sends a comment, so
// proxies and phone networks do not close it.
const sseKeepAlive = 15 * time.Second

// sseStream writes server-sent events (text/event-stream) to one client.
type sseStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	id uint64
}

// startSSE sends the event-stream headers. A stream lives as long as its
// client reads: each write must finish within streamStall (pings come
// every sseKeepAlive), so a client that stopped reading is dropped.
func startSSE(w http.ResponseWriter) *sseStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(streamStall)) // unsupported writers have no deadline anyway
	_ = rc.Flush()
	return &sseStream{w: w, rc: rc}
}

// send writes one event named event with v as its JSON data and flushes.
func (s *sseStream) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sse %s: %w", event, err)
	}
	s.id++
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamStall))
	if _, err := fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", s.id, event, b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// ping writes a comment line, keeping an idle stream open.
func (s *sseStream) ping() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamStall))
	if _, err := fmt.Fprint(s.w, ": ping\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}
