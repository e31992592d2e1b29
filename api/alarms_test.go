package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// fakeAlarms is an AlarmService whose alarms the test raises and clears
// (devices.Alarms is the real one, driven in cmd/loa's system test).
type fakeAlarms struct {
	mu       sync.Mutex
	list     []loa.Alarm // oldest first
	watchers []chan loa.AlarmChange
}

func newFakeAlarms() *fakeAlarms { return &fakeAlarms{} }

func (f *fakeAlarms) Alarms(_ context.Context, flt loa.AlarmFilter) ([]loa.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []loa.Alarm
	for i := len(f.list) - 1; i >= 0; i-- {
		a := f.list[i]
		if (flt.Active && !a.Active()) || (flt.Kind != "" && a.Kind != flt.Kind) || (flt.Device != "" && a.Device != flt.Device) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeAlarms) WatchAlarms(ctx context.Context) ([]loa.Alarm, <-chan loa.AlarmChange, error) {
	active, _ := f.Alarms(ctx, loa.AlarmFilter{Active: true})
	ch := make(chan loa.AlarmChange, 16)
	f.mu.Lock()
	f.watchers = append(f.watchers, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if i := slices.Index(f.watchers, ch); i >= 0 {
			f.watchers = slices.Delete(f.watchers, i, i+1)
			close(ch)
		}
	}()
	return active, ch, nil
}

func (f *fakeAlarms) watching() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

func (f *fakeAlarms) publish(event string, a loa.Alarm) {
	for _, w := range f.watchers {
		w <- loa.AlarmChange{Event: event, Alarm: a}
	}
}

func (f *fakeAlarms) raise(id, device, area, kind string) loa.Alarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := loa.Alarm{ID: id, Device: device, Area: area, Kind: kind, Severity: loa.SeverityCritical, Msg: kind + " on " + device, RaisedAt: testNow}
	f.list = append(f.list, a)
	f.publish(loa.AlarmRaised, a)
	return a
}

func (f *fakeAlarms) clear(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.list {
		if f.list[i].ID == id {
			f.list[i].ClearedAt = testNow.Add(time.Minute)
			f.publish(loa.AlarmCleared, f.list[i])
		}
	}
}

func (f *fakeAlarms) AcknowledgeAlarm(_ context.Context, id, by, note string) (loa.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.list {
		if f.list[i].ID != id {
			continue
		}
		if !f.list[i].Active() {
			return loa.Alarm{}, loa.Errorf(loa.ECONFLICT, "alarm %s cleared", id)
		}
		f.list[i].Ack = &loa.AlarmAck{By: by, At: testNow, Note: note}
		f.publish(loa.AlarmAcknowledged, f.list[i])
		return f.list[i], nil
	}
	return loa.Alarm{}, loa.Errorf(loa.ENOTFOUND, "alarm %q not found", id)
}

// fakeHealth answers a fixed history and remembers what it was asked.
type fakeHealth struct {
	mu       sync.Mutex
	from, to time.Time
}

func (f *fakeHealth) HealthHistory(_ context.Context, device string, from, to time.Time) ([]loa.HealthHour, error) {
	f.mu.Lock()
	f.from, f.to = from, to
	f.mu.Unlock()
	return []loa.HealthHour{{Device: device, Hour: from.Truncate(time.Hour), Samples: 360, RSSIAvg: -80}}, nil
}

func alarmIDs(t *testing.T, r response) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var list []loa.Alarm
	r.json(t, &list)
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = a.ID
	}
	return ids
}

func TestAlarmListScopeAndFilters(t *testing.T) {
	e := newEnv(t)
	e.alarms.raise("al1", "dev-a1", "a-1", loa.AlarmOffline)
	e.alarms.raise("al2", "dev-b1", "b-1", loa.AlarmTemperature)
	e.alarms.raise("al3", "dev-a1", "a-1", loa.AlarmTemperature)
	e.alarms.raise("al4", "ghost", "", loa.AlarmAmpFault) // a device in no known area
	e.alarms.clear("al1")

	for _, c := range []struct {
		secret, query string
		want          []string
	}{
		{e.admin, "", []string{"al4", "al3", "al2", "al1"}},
		{e.admin, "?active=true", []string{"al4", "al3", "al2"}},
		{e.admin, "?active=false", []string{"al1"}},
		{e.admin, "?kind=temperature", []string{"al3", "al2"}},
		{e.admin, "?area=xa-b", []string{"al2"}},
		{e.admin, "?area=hn&limit=2", []string{"al3", "al2"}},
		{e.techA, "", []string{"al3", "al1"}}, // scope xa-a: neither b's nor the arealess alarm
		{e.techA, "?area=a-1&active=true", []string{"al3"}},
	} {
		if got := alarmIDs(t, e.do("GET", "/api/v1/alarms"+c.query, c.secret, nil)); !slices.Equal(got, c.want) {
			t.Errorf("GET /alarms%s = %v, want %v", c.query, got, c.want)
		}
	}
	for query, code := range map[string]int{"?area=xa-b": 404, "?area=nowhere": 404, "?kind=fire": 400, "?active=1": 400, "?limit=100000": 400, "?area=BAD!": 400} {
		r := e.do("GET", "/api/v1/alarms"+query, e.techA, nil)
		if msg, _ := r.apiError(t); r.status != code {
			t.Errorf("techA GET /alarms%s = %d %q, want %d", query, r.status, msg, code)
		}
	}
}

func TestDeviceProblemFilter(t *testing.T) {
	e := newEnv(t)
	e.alarms.raise("al1", "dev-b1", "b-1", loa.AlarmOffline)
	e.alarms.raise("al2", "dev-a1", "a-1", loa.AlarmTemperature)
	for query, want := range map[string][]string{
		"":                     {"dev-a1", "dev-b1"},
		"?problem=any":         {"dev-a1", "dev-b1"},
		"?problem=offline":     {"dev-b1"},
		"?problem=amp_fault":   nil,
		"?state=online":        {"dev-a1"},
		"?state=offline":       {"dev-b1"}, // never heard from: offline
		"?area=xa-a":           {"dev-a1"},
		"?area=hn&problem=any": {"dev-a1", "dev-b1"},
	} {
		r := e.do("GET", "/api/v1/devices"+query, e.admin, nil)
		var list []struct {
			ID       string   `json:"id"`
			Problems []string `json:"problems"`
		}
		r.json(t, &list)
		var got []string
		for _, d := range list {
			got = append(got, d.ID)
			if d.ID == "dev-a1" && !slices.Equal(d.Problems, []string{loa.AlarmTemperature}) {
				t.Errorf("dev-a1 problems %v", d.Problems)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("GET /devices%s = %v, want %v", query, got, want)
		}
	}
	for _, query := range []string{"?state=asleep", "?problem=fire"} {
		if r := e.do("GET", "/api/v1/devices"+query, e.admin, nil); r.status != 400 {
			t.Errorf("GET /devices%s = %d, want 400", query, r.status)
		}
	}
	if r := e.do("GET", "/api/v1/devices?area=xa-b", e.techA, nil); r.status != 404 {
		t.Errorf("techA filtering on another commune = %d, want 404", r.status)
	}
}

func TestDeviceHealthRoute(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/api/v1/devices/dev-a1/health", e.techA, nil)
	var hours []loa.HealthHour
	r.json(t, &hours)
	if r.status != 200 || len(hours) != 1 || hours[0].Samples != 360 {
		t.Fatalf("health = %d %s", r.status, r.body)
	}
	if !e.health.to.Equal(testNow) || !e.health.from.Equal(testNow.Add(-24*time.Hour)) {
		t.Errorf("default range %v..%v, want the 24 h before now", e.health.from, e.health.to)
	}
	r = e.do("GET", "/api/v1/devices/dev-a1/health?from=2026-11-01T00:00:00%2B07:00&to=2026-11-02T00:00:00%2B07:00", e.techA, nil)
	if r.status != 200 || !e.health.from.Equal(time.Date(2026, 10, 31, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("explicit range: %d, from %v", r.status, e.health.from)
	}
	if r := e.do("GET", "/api/v1/devices/dev-b1/health", e.techA, nil); r.status != 404 {
		t.Errorf("another commune's device health = %d, want 404", r.status)
	}
}

// The stream sends the active alarms in scope, then live changes, and
// ends when the client goes; EventSource's ?access_token= works only here.
func TestAlarmStream(t *testing.T) {
	e := newEnv(t)
	e.alarms.raise("old", "dev-a1", "a-1", loa.AlarmOffline)
	e.alarms.raise("other", "dev-b1", "b-1", loa.AlarmOffline)

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/alarms/stream?access_token="+e.techA, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, loa.Alarm) {
		t.Helper()
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				var a loa.Alarm
				if err := json.Unmarshal([]byte(v), &a); err != nil {
					t.Fatal(err)
				}
				return name, a
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", loa.Alarm{}
	}
	if name, a := next(); name != loa.AlarmRaised || a.ID != "old" {
		t.Fatalf("first event %s %+v, want the active alarm in scope", name, a)
	}
	for e.alarms.watching() == 0 {
		time.Sleep(time.Millisecond)
	}
	e.alarms.raise("b-new", "dev-b1", "b-1", loa.AlarmTemperature) // out of scope: not sent
	e.alarms.raise("a-new", "dev-a1", "a-1", loa.AlarmTemperature)
	if name, a := next(); name != loa.AlarmRaised || a.ID != "a-new" {
		t.Fatalf("live event %s %+v", name, a)
	}
	e.alarms.clear("old")
	if name, a := next(); name != loa.AlarmCleared || a.ID != "old" || a.ClearedAt.IsZero() {
		t.Fatalf("clear event %s %+v", name, a)
	}
	cancel()
	for e.alarms.watching() != 0 { // the handler let go of its watch
		time.Sleep(time.Millisecond)
	}

	if r := e.do("GET", "/api/v1/alarms/stream?access_token=nope", "", nil); r.status != 401 {
		t.Errorf("bad query token = %d", r.status)
	}
	if r := e.do("GET", "/api/v1/alarms?access_token="+e.admin, "", nil); r.status != 401 {
		t.Errorf("query token accepted outside the stream: %d", r.status)
	}
}
