package devices

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// memHealth is an in-memory HealthStore with the store's merge rule (the
// real one is store.DB, tested in store/ and in the whole-system test;
// devices cannot import store).
type memHealth struct {
	mu    sync.Mutex
	hours map[string]loa.HealthHour // device|hour → aggregate
	puts  int
	fail  error
}

func newMemHealth() *memHealth { return &memHealth{hours: map[string]loa.HealthHour{}} }

func (m *memHealth) PutHealthHours(_ context.Context, hours []loa.HealthHour) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.puts++
	for _, h := range hours {
		k := h.Device + "|" + h.Hour.Format(time.RFC3339)
		if old, ok := m.hours[k]; ok {
			old.Merge(h)
			h = old
		}
		m.hours[k] = h
	}
	return nil
}

func (m *memHealth) HealthHours(_ context.Context, device string, from, to time.Time) ([]loa.HealthHour, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []loa.HealthHour
	for _, h := range m.hours {
		if h.Device == device && !h.Hour.Before(from) && h.Hour.Before(to) {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b loa.HealthHour) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

func (m *memHealth) PruneHealth(_ context.Context, cutoff time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, h := range m.hours {
		if h.Hour.Before(cutoff) {
			delete(m.hours, k)
			n++
		}
	}
	return n, nil
}

func (m *memHealth) get(device string, hour time.Time) (loa.HealthHour, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hours[device+"|"+hour.Format(time.RFC3339)]
	return h, ok
}

// testClock is an injected clock tests move by hand: no test sleeps an hour.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func sample(at time.Time, rssi int, temp float64, vol int, session string, st *loa.StreamStats) loa.Telemetry {
	return loa.Telemetry{At: at, RSSI: rssi, TempC: temp, Volume: vol, Session: session, Stream: st}
}

func TestHealthFoldsSamplesIntoHours(t *testing.T) {
	h10 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clock := &testClock{t: h10}
	store := newMemHealth()
	h := NewHealth(HealthConfig{Store: store, Now: clock.Now})
	ctx := context.Background()

	h.ObservePresence("rx-1", true, h10.Add(15*time.Minute))
	h.ObserveTelemetry("rx-1", sample(h10.Add(20*time.Minute), -80, 40, 70, "", nil))
	// A session: counters are cumulative, so the hour sums increments.
	h.ObserveTelemetry("rx-1", sample(h10.Add(30*time.Minute), -70, 44.5, 70, "s1",
		&loa.StreamStats{Received: 100, Lost: 4, Late: 1, Concealed: 3, FECRecovered: 1, JitterMs: 9}))
	h.ObserveTelemetry("rx-1", sample(h10.Add(40*time.Minute), -90, 41, 60, "s1",
		&loa.StreamStats{Received: 300, Lost: 10, Late: 2, Concealed: 8, FECRecovered: 2, JitterMs: 4}))
	// A new session counts from zero again.
	h.ObserveTelemetry("rx-1", sample(h10.Add(50*time.Minute), -75, 42, 65, "s2",
		&loa.StreamStats{Received: 50, Lost: 1, JitterMs: 20}))

	// In progress: visible through HealthHistory, not yet stored.
	clock.set(h10.Add(55 * time.Minute))
	cur, err := h.HealthHistory(ctx, "rx-1", h10.Add(-time.Hour), h10.Add(time.Hour))
	if err != nil || len(cur) != 1 || cur[0].Samples != 4 || cur[0].OnlineSeconds != 40*60 {
		t.Fatalf("hour in progress = %+v %v, want 4 samples and 40 min online", cur, err)
	}
	if err := h.Flush(ctx); err != nil || store.puts != 0 {
		t.Fatalf("a flush within the hour wrote %d times (%v)", store.puts, err)
	}

	// The next hour's first sample completes hour 10; the flush writes it.
	clock.set(h10.Add(70 * time.Minute))
	h.ObserveTelemetry("rx-1", sample(h10.Add(70*time.Minute), -60, 39, 65, "", nil))
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := store.get("rx-1", h10)
	want := loa.HealthHour{Device: "rx-1", Hour: h10, Samples: 4, OnlineSeconds: 45 * 60,
		RSSIMin: -90, RSSIAvg: -78.75, RSSIMax: -70, TempMaxC: 44.5, VolumeLast: 65,
		Received: 350, Lost: 11, Late: 2, Concealed: 8, FECRecovered: 2, JitterMaxMs: 20}
	if !ok || got != want {
		t.Fatalf("hour 10 =\n%+v\nwant\n%+v", got, want)
	}

	// Offline at 11:30, so hour 11 had 30 online minutes; online again at
	// 12:45 and silent until 15:10: hours 13 and 14 are whole online hours.
	h.ObservePresence("rx-1", false, h10.Add(90*time.Minute))
	h.ObservePresence("rx-1", true, h10.Add(165*time.Minute))
	clock.set(h10.Add(5*time.Hour + 10*time.Minute))
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for hour, secs := range map[int]float64{11: 1800, 12: 900, 13: 3600, 14: 3600} {
		at := time.Date(2026, 11, 26, hour, 0, 0, 0, time.UTC)
		if got, ok := store.get("rx-1", at); !ok || got.OnlineSeconds != secs {
			t.Errorf("hour %d = %+v (stored %v), want %v online seconds", hour, got, ok, secs)
		}
	}
	if got, _ := store.get("rx-1", h10.Add(time.Hour)); got.Samples != 1 || got.RSSIMax != -60 {
		t.Errorf("hour 11 = %+v, want the 11:10 sample", got)
	}

	// Close writes the hour in progress; a later process's aggregate of
	// the same hour merges with it.
	clock.set(h10.Add(5*time.Hour + 30*time.Minute))
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h15 := h10.Add(5 * time.Hour)
	if got, ok := store.get("rx-1", h15); !ok || got.OnlineSeconds != 1800 {
		t.Errorf("hour 15 at close = %+v %v, want 30 online minutes", got, ok)
	}
	h2 := NewHealth(HealthConfig{Store: store, Now: clock.Now})
	h2.ObservePresence("rx-1", true, h15.Add(40*time.Minute))
	h2.ObserveTelemetry("rx-1", sample(h15.Add(41*time.Minute), -65, 39, 65, "", nil))
	clock.set(h15.Add(50 * time.Minute))
	hist, err := h2.HealthHistory(ctx, "rx-1", h15, h15.Add(time.Hour))
	if err != nil || len(hist) != 1 || hist[0].OnlineSeconds != 2400 || hist[0].Samples != 1 {
		t.Errorf("hour 15 after a restart = %+v %v, want stored and live merged: 40 min online, 1 sample", hist, err)
	}
}

func TestHealthKeepsHoursWhenTheStoreFails(t *testing.T) {
	h10 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clock := &testClock{t: h10}
	store := newMemHealth()
	store.fail = errors.New("disk full")
	h := NewHealth(HealthConfig{Store: store, Now: clock.Now})
	h.ObserveTelemetry("rx-1", sample(h10.Add(time.Minute), -80, 40, 70, "", nil))
	clock.set(h10.Add(2 * time.Hour))
	if err := h.Flush(context.Background()); err == nil {
		t.Fatal("a failing store reported no error")
	}
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, ok := store.get("rx-1", h10); !ok || got.Samples != 1 {
		t.Errorf("after the store recovered, hour 10 = %+v %v", got, ok)
	}
}

func TestHealthPruneUsesRetention(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	store := newMemHealth()
	store.PutHealthHours(context.Background(), []loa.HealthHour{
		{Device: "rx-1", Hour: now.Add(-loa.HealthRetention - 24*time.Hour)}, {Device: "rx-1", Hour: now.Add(-loa.HealthRetention + 24*time.Hour)}})
	h := NewHealth(HealthConfig{Store: store, Now: func() time.Time { return now }})
	if n, err := h.Prune(context.Background()); err != nil || n != 1 {
		t.Errorf("prune = %d %v, want the one hour older than the retention", n, err)
	}
}

// BenchmarkObserveTelemetry is the cost per telemetry sample of the
// health book and the alarm evaluator together, over 5000 streaming
// receivers.
func BenchmarkObserveTelemetry(b *testing.B) {
	const n = 5000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("rx-%04d", i)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	h := NewHealth(HealthConfig{Store: newMemHealth(), Now: func() time.Time { return now }})
	a, err := NewAlarms(context.Background(), AlarmConfig{Store: newMemAlarms(), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := uint64(i / n)
		t := loa.Telemetry{At: now, RSSI: -80, TempC: 41, Volume: 70, Session: "s1",
			Stream: &loa.StreamStats{Received: 500 * k, Lost: k, JitterMs: 3}}
		h.ObserveTelemetry(ids[i%n], t)
		a.ObserveTelemetry(ids[i%n], t)
	}
}
