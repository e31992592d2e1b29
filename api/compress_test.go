package api_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestListsAreGzipped: a browser's GET of a JSON list comes gzipped and
// decodes to what a client without gzip reads; the event streams are
// never compressed (a gzip writer would hold their events back).
func TestListsAreGzipped(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"loa-1", "loa-2", "loa-3"} {
		want(t, e.do("POST", "/api/v1/devices", e.admin, map[string]any{"id": id, "area_id": "a-1", "name": "Loa chợ " + id}), http.StatusCreated)
	}
	get := func(path, enc string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Accept-Encoding", enc) // set by hand: Go's client then leaves the body as sent
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	plain := get("/api/v1/devices", "identity")
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("without gzip: Content-Encoding %q", plain.Header.Get("Content-Encoding"))
	}
	pb, _ := io.ReadAll(plain.Body)
	zipped := get("/api/v1/devices", "gzip, deflate, br")
	if zipped.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(zipped.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("with gzip: Content-Encoding %q, Vary %q", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	zb, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var a, b []map[string]any
	if json.Unmarshal(pb, &a) != nil || json.Unmarshal(zb, &b) != nil || len(a) != 5 || len(b) != 5 || a[4]["id"] != b[4]["id"] {
		t.Fatalf("plain %s\ngzipped %s", pb, zb)
	}

	// The stream's first event arrives, uncompressed, while it stays open.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events?topics=alarms&access_token="+e.admin, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("the event stream: Content-Encoding %q, Content-Type %q", res.Header.Get("Content-Encoding"), res.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line == "" {
		t.Fatalf("the stream's first line: %q %v", line, err)
	}
}
