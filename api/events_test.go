package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// consoleEvent is one event of GET /api/v1/events.
type consoleEvent struct {
	topic   string
	Reset   bool              `json:"reset"`
	Changed []json.RawMessage `json:"changed"`
	Removed []string          `json:"removed"`
	Counts  *struct{ Total, Online, Offline int }
	Entries []loa.PlayLogEntry `json:"entries"`
}

// ids lists the ids of the changed items.
func (ev consoleEvent) ids(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, raw := range ev.Changed {
		var v struct{ ID string }
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.ID)
	}
	return out
}

// openEvents opens the event stream as secret and returns a reader of
// its events; the stream closes when the test ends.
func openEvents(t *testing.T, e *env, secret, topics string) func() consoleEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events?topics="+topics+"&access_token="+secret, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	return func() consoleEvent {
		t.Helper()
		var ev consoleEvent
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev.topic = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				if err := json.Unmarshal([]byte(v), &ev); err != nil {
					t.Fatalf("event %s: %v", v, err)
				}
				return ev
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return ev
	}
}

// nextOf reads events until one of topic comes that satisfies ok.
func nextOf(t *testing.T, next func() consoleEvent, topic string, ok func(consoleEvent) bool) consoleEvent {
	t.Helper()
	for {
		if ev := next(); ev.topic == topic && ok(ev) {
			return ev
		}
	}
}

// The console's one stream: each topic's first event resets and carries
// the state in scope, then only changes come, and only in scope: another
// commune's session, alarm and receivers never reach operator A.
func TestConsoleEventStream(t *testing.T) {
	e := newEnv(t)
	e.server.EventInterval = 10 * time.Millisecond
	media := e.withMedia()
	e.alarms.raise("old", "dev-a1", "a-1", loa.AlarmOffline)
	e.alarms.raise("other", "dev-b1", "b-1", loa.AlarmOffline)

	read := openEvents(t, e, e.opA, "sessions,devices,alarms")
	seen := map[string]int{}
	next := func() consoleEvent { ev := read(); seen[ev.topic]++; return ev }
	first := map[string]consoleEvent{}
	for len(first) < 3 {
		ev := next()
		if _, seen := first[ev.topic]; !seen {
			first[ev.topic] = ev
		}
	}
	for topic, ev := range first {
		if !ev.Reset {
			t.Errorf("first %s event does not reset: %+v", topic, ev)
		}
	}
	if ids := first["alarms"].ids(t); !slices.Equal(ids, []string{"old"}) {
		t.Errorf("first alarms: %v, want the active alarm in scope only", ids)
	}
	if c := first["devices"].Counts; c == nil || c.Total != 1 || c.Online != 1 || c.Offline != 0 {
		t.Errorf("first devices counts: %+v, want operator A's one receiver, online", c)
	}
	if n := len(first["sessions"].Changed); n != 0 {
		t.Errorf("first sessions: %d, none plays", n)
	}

	// Another commune's session is not sent; A's is, once, then its end.
	_, r := e.start(e.opB, map[string]any{"media_id": media, "targets": map[string]any{"areas": []string{"b-1"}}})
	want(t, r, http.StatusCreated)
	mine, r := e.start(e.opA, map[string]any{"media_id": media, "targets": map[string]any{"areas": []string{"a-1"}}})
	want(t, r, http.StatusCreated)
	ev := nextOf(t, next, "sessions", func(consoleEvent) bool { return true })
	if ids := ev.ids(t); !slices.Equal(ids, []string{mine.ID}) || ev.Reset {
		t.Fatalf("sessions change: %v (reset %v), want only %s", ids, ev.Reset, mine.ID)
	}
	want(t, e.do("POST", "/api/v1/sessions/"+mine.ID+"/stop", e.opA, nil), http.StatusOK)
	ev = nextOf(t, next, "sessions", func(consoleEvent) bool { return true })
	if !slices.Equal(ev.Removed, []string{mine.ID}) || len(ev.Changed) != 0 {
		t.Fatalf("after the stop: %+v, want %s removed", ev, mine.ID)
	}

	// Alarms are pushed as they happen, in scope only.
	e.alarms.raise("b-new", "dev-b1", "b-1", loa.AlarmTemperature)
	e.alarms.raise("a-new", "dev-a1", "a-1", loa.AlarmTemperature)
	ev = nextOf(t, next, "alarms", func(consoleEvent) bool { return true })
	if ids := ev.ids(t); !slices.Equal(ids, []string{"a-new"}) {
		t.Fatalf("alarm raised: %v, want a-new only", ids)
	}
	e.alarms.clear("old")
	ev = nextOf(t, next, "alarms", func(consoleEvent) bool { return true })
	if !slices.Equal(ev.Removed, []string{"old"}) {
		t.Fatalf("alarm cleared: %+v", ev)
	}

	// Nothing is sent for a quiet topic: the receivers did not change in
	// all the rounds above.
	if n := seen["devices"]; n != 1 {
		t.Errorf("%d devices events, want only the first", n)
	}
}

// Bad topics are refused; a stream without credentials is 401.
func TestConsoleEventStreamRefusals(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/api/v1/events?topics=sessions,secrets", e.opA, nil)
	want(t, r, http.StatusBadRequest)
	if msg, code := r.apiError(t); code != loa.EINVALID || !strings.Contains(msg, "topics") {
		t.Errorf("unknown topic: %s %s", code, msg)
	}
	want(t, e.do("GET", "/api/v1/events", "", nil), http.StatusUnauthorized)
	want(t, e.do("GET", "/api/v1/events?access_token=nope", "", nil), http.StatusUnauthorized)

	// A revoked token's stream ends at the next round.
	e.server.EventInterval = 10 * time.Millisecond
	var me struct{ User string } // a token's id
	e.do("GET", "/api/v1/me", e.techA, nil).json(t, &me)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events?topics=sessions&access_token="+e.techA, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatalf("no first event: %v", sc.Err())
	}
	want(t, e.do("DELETE", "/api/v1/tokens/"+me.User, e.admin, nil), http.StatusOK)
	for sc.Scan() { // events and pings until the stream ends
	}
	if err := sc.Err(); err != nil {
		t.Errorf("the stream of a revoked token failed instead of ending: %v", err)
	}
}

// The playlog topic sends new entries only, in scope, with the scope as
// the reader's area.
func TestConsoleEventStreamPlayLog(t *testing.T) {
	e := newEnv(t)
	e.server.EventInterval = 10 * time.Millisecond
	at := testNow.Add(-time.Hour)
	entry := func(event, area, device string) loa.PlayLogEntry {
		at = at.Add(time.Minute)
		return loa.PlayLogEntry{At: at, Event: event, SessionID: "s-" + area, Areas: []string{area}, Devices: []string{device}}
	}
	add := func(en loa.PlayLogEntry) { // newest first, as the log answers
		e.playlog.mu.Lock()
		defer e.playlog.mu.Unlock()
		e.playlog.entries = append([]loa.PlayLogEntry{en}, e.playlog.entries...)
	}
	add(entry(loa.PlayStarted, "a-1", "dev-a1"))
	add(entry(loa.PlayStarted, "b-1", "dev-b1"))

	next := openEvents(t, e, e.opA, "playlog")
	ev := next()
	if !ev.Reset || len(ev.Entries) != 1 || ev.Entries[0].SessionID != "s-a-1" {
		t.Fatalf("first playlog event: %+v, want a reset with operator A's entry", ev)
	}
	if f := e.playlog.lastFilter(); f.Area != "xa-a" {
		t.Errorf("the stream read the log with area %q, want the scope", f.Area)
	}
	add(entry(loa.PlayStopped, "b-1", "dev-b1")) // another commune's: never sent
	add(entry(loa.PlayEnded, "a-1", "dev-a1"))
	ev = next()
	if ev.Reset || len(ev.Entries) != 1 || ev.Entries[0].Event != loa.PlayEnded || ev.Entries[0].SessionID != "s-a-1" {
		t.Fatalf("next playlog event: %+v, want only A's new entry", ev)
	}
}
