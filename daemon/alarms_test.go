package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// sseEvent is one server-sent event of the alarm stream.
type sseEvent struct {
	name  string
	alarm loa.Alarm
}

// watchAlarmStream reads GET /api/v1/alarms/stream, authenticated with
// ?access_token= as the browser's EventSource does, until the test ends.
func watchAlarmStream(t *testing.T, base, token, query string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/alarms/stream?access_token="+url.QueryEscape(token)+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("alarm stream: %s %s", resp.Status, b)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.alarm); err != nil {
					t.Errorf("alarm stream data %q: %v", line, err)
				}
			case line == "" && ev.name != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// nextEvent waits for the stream's next event matching kind and device.
func nextEvent(t *testing.T, events <-chan sseEvent, name, kind, device string) loa.Alarm {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("alarm stream ended waiting for %s %s of %s", name, kind, device)
			}
			if ev.name == name && ev.alarm.Kind == kind && ev.alarm.Device == device {
				return ev.alarm
			}
		case <-timeout:
			t.Fatalf("no %s %s alarm of %s on the stream", name, kind, device)
		}
	}
}

// webhookSink is the user's webhook receiver.
type webhookSink struct {
	mu      sync.Mutex
	changes []loa.AlarmChange
	fails   int // answer 503 to this many posts first, to exercise retries
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails > 0 {
		s.fails--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var c loa.AlarmChange
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	s.changes = append(s.changes, c)
}

func (s *webhookSink) has(event, kind, device string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.changes {
		if c.Event == event && c.Alarm.Kind == kind && c.Alarm.Device == device {
			return true
		}
	}
	return false
}

// alarms lists alarms. Unless the query asks for them, plain_receivers
// alarms are left out: a simulator that announces no srtp-gcm raises one
// per receiver, and srtp_test.go checks them.
func (s *system) alarms(query string) []loa.Alarm {
	s.t.Helper()
	var out []loa.Alarm
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/alarms"+query, nil, &out); err != nil {
		s.t.Fatalf("GET /alarms%s: %v", query, err)
	}
	if strings.Contains(query, loa.AlarmPlainReceiver) {
		return out
	}
	return slices.DeleteFunc(out, func(a loa.Alarm) bool { return a.Kind == loa.AlarmPlainReceiver })
}

// deviceIDs lists devices; with ?problem=any, those whose only problem is
// plain_receivers are left out (see alarms).
func (s *system) deviceIDs(query string) []string {
	s.t.Helper()
	var out []struct {
		ID       string   `json:"id"`
		Problems []string `json:"problems"`
	}
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/devices"+query, nil, &out); err != nil {
		s.t.Fatalf("GET /devices%s: %v", query, err)
	}
	var ids []string
	for _, d := range out {
		if strings.Contains(query, "problem=any") && slices.Equal(d.Problems, []string{loa.AlarmPlainReceiver}) {
			continue
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func activeAlarm(list []loa.Alarm, kind, device string) (loa.Alarm, bool) {
	for _, a := range list {
		if a.Kind == kind && a.Device == device && a.Active() {
			return a, true
		}
	}
	return loa.Alarm{}, false
}

// TestSystemAlarmRaisedAndCleared drives alarms with simulated receivers
// over real MQTT: a hot board, a failed speaker test and a receiver that
// dies and comes back are each raised and cleared with timestamps, seen
// through GET /alarms, the device filters, the event stream, the webhook
// and the metrics.
func TestSystemAlarmRaisedAndCleared(t *testing.T) {
	sink := &webhookSink{fails: 2}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	s := startSystem(t, systemOpts{receivers: 2, tele: 50 * time.Millisecond, configure: func(c *Config) {
		c.Alarms.Offline = time.Second
		c.AlarmWebhook = hook.URL
	}})
	ctx := context.Background()
	hot := s.byArea["a"][0] // rx-000 in cluster a1
	events := watchAlarmStream(t, s.m.URL(), s.m.AdminToken, "")

	// Temperature: raised at 75 °C, kept between 70 and 75, cleared below 70.
	hot.SetTemperature(80)
	raised := nextEvent(t, events, loa.AlarmRaised, loa.AlarmTemperature, hot.ID())
	if raised.Area != "a1" || raised.Value != 80 || raised.Threshold != 75 || raised.RaisedAt.IsZero() {
		t.Errorf("temperature alarm %+v", raised)
	}
	if _, ok := activeAlarm(s.alarms("?active=true&kind=temperature&area=a"), loa.AlarmTemperature, hot.ID()); !ok {
		t.Error("the temperature alarm is not listed in its commune")
	}
	if got := s.alarms("?area=b"); len(got) != 0 {
		t.Errorf("commune b lists alarms of a: %+v", got)
	}
	if ids := s.deviceIDs("?problem=temperature"); len(ids) != 1 || ids[0] != hot.ID() {
		t.Errorf("devices with a temperature problem: %v", ids)
	}
	if ids := s.deviceIDs("?problem=any&area=b"); len(ids) != 0 {
		t.Errorf("devices with problems in b: %v", ids)
	}
	hot.SetTemperature(72)
	loatest.Eventually(t, loatest.Wait, func() bool {
		st, ok := s.m.Fleet.DeviceState(hot.ID())
		return ok && st.Telemetry != nil && st.Telemetry.TempC == 72
	}, "telemetry at 72 °C")
	if _, ok := activeAlarm(s.alarms("?active=true"), loa.AlarmTemperature, hot.ID()); !ok {
		t.Error("the temperature alarm cleared at 72 °C, above the 70 °C clear level")
	}
	hot.SetTemperature(math.NaN())
	cleared := nextEvent(t, events, loa.AlarmCleared, loa.AlarmTemperature, hot.ID())
	if cleared.ID != raised.ID || cleared.ClearedAt.Before(cleared.RaisedAt) {
		t.Errorf("cleared %+v, raised %+v", cleared, raised)
	}

	// A speaker test with the amplifier off fails: test_failed; with it
	// on again the next test passes and clears it.
	dev := "/api/v1/devices/" + hot.ID() + "/commands"
	if err := s.api.JSON(ctx, "POST", dev, map[string]any{"op": "amp", "args": map[string]bool{"on": false}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.api.JSON(ctx, "POST", dev, map[string]any{"op": "test", "args": map[string]int{"duration_ms": 100}}, nil); err == nil {
		t.Fatal("a speaker test with the amplifier off passed")
	}
	failed := nextEvent(t, events, loa.AlarmRaised, loa.AlarmTestFailed, hot.ID())
	if failed.Value > failed.Threshold {
		t.Errorf("test_failed alarm %+v: measured level above the pass level", failed)
	}
	s.api.JSON(ctx, "POST", dev, map[string]any{"op": "amp", "args": map[string]bool{"on": true}}, nil)
	if err := s.api.JSON(ctx, "POST", dev, map[string]any{"op": "test", "args": map[string]int{"duration_ms": 100}}, nil); err != nil {
		t.Fatalf("speaker test with the amplifier on: %v", err)
	}
	nextEvent(t, events, loa.AlarmCleared, loa.AlarmTestFailed, hot.ID())

	// An amplifier fault event raises amp_fault; amp_ok clears it.
	if err := hot.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, loa.AlarmRaised, loa.AlarmAmpFault, hot.ID())
	hot.SetAmpFault(false)
	nextEvent(t, events, loa.AlarmCleared, loa.AlarmAmpFault, hot.ID())

	// A receiver that dies: offline alarm after the threshold; back: cleared.
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-x", AreaID: "b1", Name: "rx-x"})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := firmwaresim.Config{ID: "rx-x", Password: pw, Broker: s.m.MQTTURL(), TeleInterval: 50 * time.Millisecond, Logger: testLogger(t)}
	rx := firmwaresim.NewReceiver(rcfg)
	if err := rx.Start(ctx); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, loatest.Wait, func() bool { st, ok := s.m.Fleet.DeviceState("rx-x"); return ok && st.Online }, "rx-x online")
	killed := time.Now()
	rx.Kill()
	off := nextEvent(t, events, loa.AlarmRaised, loa.AlarmOffline, "rx-x")
	for off.RaisedAt.Before(killed) { // raised while it was still connecting (a slow machine): cleared since
		off = nextEvent(t, events, loa.AlarmRaised, loa.AlarmOffline, "rx-x")
	}
	if off.Area != "b1" || off.Value < 1 || off.Threshold != 1 || off.Severity != loa.SeverityCritical {
		t.Errorf("offline alarm %+v", off)
	}
	if _, ok := activeAlarm(s.alarms("?area=b&active=true"), loa.AlarmOffline, "rx-x"); !ok {
		t.Errorf("the offline alarm is not listed in commune b: %+v", s.alarms(""))
	}
	if ids := s.deviceIDs("?state=offline&problem=offline"); len(ids) != 1 || ids[0] != "rx-x" {
		t.Errorf("offline devices with an offline problem: %v", ids)
	}
	// A technician scoped to commune a sees neither b's alarms nor its stream events.
	var scoped struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "tech a", "role": loa.RoleTechnician, "area_id": "a"}, &scoped); err != nil {
		t.Fatal(err)
	}
	var seen []loa.Alarm
	if err := api.NewClient(s.m.URL(), scoped.Secret).JSON(ctx, "GET", "/api/v1/alarms", nil, &seen); err != nil {
		t.Fatal(err)
	}
	for _, a := range seen {
		if a.Area != "a1" {
			t.Errorf("a token scoped to a sees %s's alarm in %s", a.Device, a.Area)
		}
	}

	rx2 := firmwaresim.NewReceiver(rcfg)
	if err := rx2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rx2.Close()
	back := nextEvent(t, events, loa.AlarmCleared, loa.AlarmOffline, "rx-x")
	if back.ID != off.ID || back.ClearedAt.Before(back.RaisedAt) {
		t.Errorf("offline cleared %+v, raised %+v", back, off)
	}
	if got := s.alarms("?active=true"); len(got) != 0 {
		t.Errorf("alarms still active: %+v", got)
	}
	if got := s.alarms("?active=false&kind=offline"); len(got) != 1 || got[0].ClearedAt.IsZero() {
		t.Errorf("cleared offline alarms: %+v", got)
	}

	// The webhook got every raise and clear despite failing twice first.
	for _, k := range []string{loa.AlarmTemperature, loa.AlarmTestFailed, loa.AlarmAmpFault} {
		loatest.Eventually(t, loatest.Wait, func() bool {
			return sink.has(loa.AlarmRaised, k, hot.ID()) && sink.has(loa.AlarmCleared, k, hot.ID())
		}, "webhook "+k)
	}
	loatest.Eventually(t, loatest.Wait, func() bool {
		return sink.has(loa.AlarmRaised, loa.AlarmOffline, "rx-x") && sink.has(loa.AlarmCleared, loa.AlarmOffline, "rx-x")
	}, "webhook offline")

	// Metrics and the health history. The sender counts a delivery after
	// the sink has answered it, so wait for the count to catch up.
	sink.mu.Lock()
	delivered := len(sink.changes)
	sink.mu.Unlock()
	sent := fmt.Sprintf("loa_alarm_webhook_sent_total %d\n", delivered)
	loatest.Eventually(t, loatest.Wait, func() bool { return strings.Contains(s.metrics(), sent) }, "webhook sent metric")
	metrics := s.metrics()
	for _, want := range []string{`loa_alarms_raised_total{kind="test_failed"} 1`, `loa_alarms_active{kind="offline"} 0`,
		"loa_devices_offline 0", "loa_devices_online 3"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	var hours []loa.HealthHour
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/"+hot.ID()+"/health", nil, &hours); err != nil {
		t.Fatal(err)
	}
	if len(hours) == 0 || hours[len(hours)-1].Samples == 0 || hours[len(hours)-1].TempMaxC < 80 {
		t.Errorf("health of %s = %+v, want this hour with its samples and the 80 °C peak", hot.ID(), hours)
	}
}

func (s *system) metrics() string {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.m.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.m.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Bad alarm and health queries are refused with the field named.
func TestSystemAlarmBadQueries(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	for _, path := range []string{
		"/api/v1/alarms?kind=fire", "/api/v1/alarms?active=yes", "/api/v1/alarms?limit=0",
		"/api/v1/devices?state=sleeping", "/api/v1/devices?problem=gremlins",
		"/api/v1/devices/rx-000/health?from=yesterday", "/api/v1/devices/rx-000/health?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
		"/api/v1/devices/rx-000/health?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
	} {
		err := s.api.JSON(ctx, "GET", path, nil, nil)
		var ae *api.ClientError
		if !asAPIError(err, &ae) || ae.Status != 400 || ae.Code != loa.EINVALID {
			t.Errorf("GET %s: %v, want 400 invalid", path, err)
		}
	}
	for _, path := range []string{"/api/v1/alarms?area=nowhere", "/api/v1/devices/ghost/health"} {
		err := s.api.JSON(ctx, "GET", path, nil, nil)
		var ae *api.ClientError
		if !asAPIError(err, &ae) || ae.Status != 404 {
			t.Errorf("GET %s: %v, want 404", path, err)
		}
	}
	// The stream refuses a wrong query token like a wrong header.
	resp, err := http.Get(s.m.URL() + "/api/v1/alarms/stream?access_token=wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream with a bad token: %s", resp.Status)
	}
	// Only the stream takes a query token.
	resp, err = http.Get(s.m.URL() + "/api/v1/alarms?access_token=" + url.QueryEscape(s.m.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /alarms with a query token: %s, want 401", resp.Status)
	}
}
