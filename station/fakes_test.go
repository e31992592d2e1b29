package station_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// The station's services run here on a real store in t.TempDir(), with a
// fake engine and fleet behind the interfaces station declares. Every test
// runs in a synctest bubble: time.Sleep moves the fake clock, and
// synctest.Wait lets every goroutine settle.

var discard = slog.New(slog.DiscardHandler)

// fakeEngine streams nothing: it records what it is asked, tunes every
// device of a session through its Tuner as the real engine does, and tells
// its outcomes to outcome.
type fakeEngine struct {
	tuner   station.Tuner
	outcome func(loa.SessionOutcome)

	mu        sync.Mutex
	started   []*loa.Session
	stopped   map[string]string // session → reason
	ended     map[string]bool
	listening map[string][]netip.AddrPort // session → its static listeners
}

// AddListener, RemoveListener, LocalAddr and PublicAddr make it the
// sessions' Listeners, keeping the listeners of each running session.
func (e *fakeEngine) AddListener(id string, dest netip.AddrPort, _ []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended[id] {
		return loa.Errorf(loa.ENOTFOUND, "session %s is not running", id)
	}
	if e.listening == nil {
		e.listening = map[string][]netip.AddrPort{}
	}
	if !slices.Contains(e.listening[id], dest) {
		e.listening[id] = append(e.listening[id], dest)
	}
	return nil
}

func (e *fakeEngine) RemoveListener(id string, dest netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.Index(e.listening[id], dest)
	if i < 0 {
		return loa.Errorf(loa.ENOTFOUND, "session %s has no listener %s", id, dest)
	}
	e.listening[id] = slices.Delete(e.listening[id], i, i+1)
	return nil
}

func (e *fakeEngine) listeners(id string) []netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.listening[id])
}

func (e *fakeEngine) LocalAddr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:5004") }
func (e *fakeEngine) PublicAddr() string        { return "" }

func (e *fakeEngine) Start(ctx context.Context, s *loa.Session, src loa.PacketSource, frames int) error {
	cp := *s
	e.mu.Lock()
	e.started = append(e.started, &cp)
	e.mu.Unlock()
	for _, d := range s.Devices {
		if e.tuner != nil {
			go e.tuner.Tune(context.WithoutCancel(ctx), d, protocol.PlayArgs{Session: s.ID})
		}
	}
	// Packet 0 leaves at once.
	go e.outcome(loa.SessionOutcome{Kind: loa.OutcomeStreaming, Session: s.ID, At: time.Now()})
	return nil
}

func (e *fakeEngine) Stop(ctx context.Context, id, reason string) error {
	e.mu.Lock()
	if e.stopped == nil {
		e.stopped = map[string]string{}
	}
	e.stopped[id] = reason
	e.mu.Unlock()
	e.end(id, loa.SessionStopped, reason)
	return nil
}

// end ends a session as the engine would: once.
func (e *fakeEngine) end(id, state, reason string) {
	e.mu.Lock()
	if e.ended == nil {
		e.ended = map[string]bool{}
	}
	done := e.ended[id]
	e.ended[id] = true
	delete(e.listening, id) // the stream, and its listeners, stop with the session
	e.mu.Unlock()
	if !done {
		e.outcome(loa.SessionOutcome{Kind: loa.OutcomeEnded, Session: id, At: time.Now(), State: state, Reason: reason})
	}
}

func (e *fakeEngine) sessions() []*loa.Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.started)
}

// fakeFleet is the receivers: who is online, how each answers a play
// command, and the events they send.
type fakeFleet struct {
	mu       sync.Mutex
	online   map[string]bool
	tune     map[string]func(ctx context.Context) error // default: acked at once
	events   map[int]func(string, protocol.Event)
	presence map[int]func(loa.DeviceState)
	boot     map[string]uint64 // a receiver's boot counter (nil: 0)
	next     int
}

func newFleet(online ...string) *fakeFleet {
	f := &fakeFleet{online: map[string]bool{}, tune: map[string]func(context.Context) error{},
		events: map[int]func(string, protocol.Event){}, presence: map[int]func(loa.DeviceState){}}
	for _, id := range online {
		f.online[id] = true
	}
	return f
}

func (f *fakeFleet) DeviceState(id string) (loa.DeviceState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	presence := loa.PresenceOffline
	if f.online[id] {
		presence = loa.PresenceOnline
	}
	return loa.DeviceState{ID: id, Online: f.online[id], Presence: presence, Boot: f.boot[id]}, true
}

func (f *fakeFleet) OnEvent(fn func(string, protocol.Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	n := f.next
	f.events[n] = fn
	return func() { f.mu.Lock(); delete(f.events, n); f.mu.Unlock() }
}

func (f *fakeFleet) OnPresence(fn func(loa.DeviceState)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	n := f.next
	f.presence[n] = fn
	return func() { f.mu.Lock(); delete(f.presence, n); f.mu.Unlock() }
}

func (f *fakeFleet) Tune(ctx context.Context, deviceID string, args protocol.PlayArgs) error {
	f.mu.Lock()
	fn := f.tune[deviceID]
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx)
}

func (f *fakeFleet) Untune(ctx context.Context, deviceID, sessionID string) error { return nil }

// answer sets how a device answers play commands.
func (f *fakeFleet) answer(id string, fn func(ctx context.Context) error) {
	f.mu.Lock()
	f.tune[id] = fn
	f.mu.Unlock()
}

// send delivers a receiver's event to every subscriber.
func (f *fakeFleet) send(device string, ev protocol.Event) {
	f.mu.Lock()
	fns := make([]func(string, protocol.Event), 0, len(f.events))
	for _, fn := range f.events {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(device, ev)
	}
}

func played(session string) protocol.Event {
	return protocol.Event{Type: protocol.EventPlayed, TS: time.Now().UnixMilli(), Session: session}
}

func finished(session string, frames uint64) protocol.Event {
	return protocol.Event{Type: protocol.EventFinished, TS: time.Now().UnixMilli(), Session: session,
		Stream: &protocol.StreamStats{Played: frames}}
}

// world is a station on a temp store: province "xa" with the devices given.
type world struct {
	t        *testing.T
	dir      string
	db       *store.DB
	engine   *fakeEngine
	fleet    *fakeFleet
	sessions *station.Sessions
	alerts   *station.Alerts
	media    *loa.Media // one second of audio: 50 frames
	cancel   context.CancelFunc
	done     chan struct{}
}

// newWorld opens the store and the services in dir (a fresh temp dir if
// ""), with devices in province "xa", and runs the alert clock until the test
// (or stop) ends.
func newWorld(t *testing.T, dir string, fleet *fakeFleet, devices ...string) *world {
	t.Helper()
	ctx := context.Background()
	fresh := dir == ""
	if fresh {
		dir = t.TempDir()
	}
	db, err := store.Open(filepath.Join(dir, "loa.db"), store.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: dir, db: db, fleet: fleet}
	tuner := &station.AlertTuner{Tuner: fleet}
	w.engine = &fakeEngine{tuner: tuner, outcome: func(o loa.SessionOutcome) {
		w.sessions.HandleOutcome(o)
		w.alerts.HandleOutcome(o)
	}}
	w.sessions = station.NewSessions(db, w.engine, w.engine, discard)
	w.alerts = station.NewAlerts(db, w.sessions, fleet, toneSpeech{}, 100*time.Millisecond, discard)
	tuner.Alerts = w.alerts
	if fresh {
		if err := db.CreateArea(ctx, &loa.Area{ID: "xa", Name: "Tỉnh", Kind: loa.AreaProvince}); err != nil {
			t.Fatal(err)
		}
		for _, id := range devices {
			if _, err := db.CreateDevice(ctx, &loa.Device{ID: id, AreaID: "xa"}); err != nil {
				t.Fatal(err)
			}
		}
		w.media = importSecond(t, db)
	}
	if err := w.alerts.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.alerts.Run(runCtx)
	}()
	t.Cleanup(w.stop)
	return w
}

// stop ends the alert clock and closes the store, as a controller stopping.
func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
	if err := w.db.Close(); err != nil {
		w.t.Error(err)
	}
}

// toneSpeech "speaks" any text as half a second of tone.
type toneSpeech struct{}

func (toneSpeech) Synthesize(ctx context.Context, text string) ([]int16, int, error) {
	return media.AttentionTone(48000)[:24000], 48000, nil
}

// importSecond stores one second of a tone as a media item.
func importSecond(t *testing.T, db *store.DB) *loa.Media {
	t.Helper()
	pcm := media.AttentionTone(48000)[:48000]
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, pcm, 48000, 1); err != nil {
		t.Fatal(err)
	}
	m, err := station.NewMedia(db, media.Options{}, station.TranscodeLimits{}, discard).ImportMedia(context.Background(), "tone", &wav, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// report returns the alert with each receiver's line by device.
func (w *world) report(id string) (*loa.Alert, map[string]loa.Delivery) {
	w.t.Helper()
	a, err := w.alerts.Alert(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	by := map[string]loa.Delivery{}
	for _, d := range a.Report {
		by[d.Device] = d
	}
	return a, by
}

func (w *world) sendAlert(devices []string, expiresIn time.Duration) *loa.Alert {
	w.t.Helper()
	a := &loa.Alert{Title: "Bão số 5", Level: loa.AlertPriority, Content: loa.AlertContent{MediaID: w.media.ID},
		Targets: loa.Targets{Devices: devices}, Repeats: 1, ExpiresAt: time.Now().Add(expiresIn), CreatedBy: "tok-prov"}
	if err := w.alerts.SendAlert(context.Background(), a); err != nil {
		w.t.Fatal(err)
	}
	return a
}

func wantDelivery(t *testing.T, got loa.Delivery, state, reason string) {
	t.Helper()
	if got.State != state || got.Reason != reason {
		t.Errorf("%s: %s/%s, want %s/%s", got.Device, got.State, got.Reason, state, reason)
	}
}
