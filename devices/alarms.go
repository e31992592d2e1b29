package devices

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// AlarmStore persists alarms (store.DB implements it).
type AlarmStore interface {
	PutAlarms(ctx context.Context, alarms []loa.Alarm) error
	Alarms(ctx context.Context, f loa.AlarmFilter) ([]loa.Alarm, error)
	PruneAlarms(ctx context.Context, cutoff time.Time) (int, error)
}

// DeviceDirectory lists the registered devices (store.DB implements it):
// a registered device that never connects is offline too.
type DeviceDirectory interface {
	Devices(ctx context.Context) ([]*loa.Device, error)
}

// AlarmConfig configures the alarm evaluator.
type AlarmConfig struct {
	Thresholds loa.AlarmThresholds // zero value: loa.DefaultAlarmThresholds
	Store      AlarmStore
	Directory  DeviceDirectory
	// OnChange, if set, is called with every raise and clear after it is
	// stored, in order. It must not block (the webhook queues).
	OnChange func(loa.AlarmChange)
	Tick     time.Duration // offline check period; default Offline/10 within 100ms..15s
	Now      func() time.Time
	Logger   *slog.Logger
}

const (
	// minLossWindow is the fewest packets a stream-loss verdict is made
	// on; shorter windows add up until they reach it.
	minLossWindow = 50
	// watchBuffer is how many changes a watcher may fall behind before it
	// is dropped (its channel closed).
	watchBuffer  = 256
	alarmTimeout = 10 * time.Second
	// codeTestFailed is the ack code of a test that ran and measured too
	// little (CONTRACT.md, test).
	codeTestFailed = "failed"
)

type alarmKey struct{ device, kind string }

// Alarms evaluates the fleet's telemetry, events, presence and speaker
// tests into alarms: raised when a threshold is crossed, cleared with a
// timestamp when the condition is gone (with hysteresis, so a value near
// the limit does not flap). Every raise and clear is stored before it is
// published to watchers and OnChange. It implements loa.AlarmService.
type Alarms struct {
	cfg AlarmConfig
	th  loa.AlarmThresholds
	log *slog.Logger
	now func() time.Time
	m   *alarmMetrics

	mu       sync.Mutex // guards everything below; held across the store write so changes stay in order
	active   map[alarmKey]loa.Alarm
	area     map[string]string    // device → area, refreshed every tick
	offSince map[string]time.Time // registered devices not online, since when
	online   map[string]bool      // presence from notices
	loss     map[string]lossWindow
	watchers map[*alarmWatcher]struct{}
	plain    map[string]bool      // device → its last online status announced no srtp-gcm
	unsync   map[string]time.Time // device → since when its sync error is above loa.OutOfSyncMs
	start    time.Time
	lastID   int64

	fleet   *Fleet
	started bool
	stop    chan struct{}
	stopped chan struct{}
	kick    chan struct{} // asks for a Check soon: a receiver's plain flag changed
	once    sync.Once
}

type lossWindow struct {
	mark           streamMark // counters at the window's start
	received, lost uint64     // accumulated while below minLossWindow
}

type alarmWatcher struct {
	ch chan loa.AlarmChange
}

// NewAlarms loads the active alarms from the store. Attach it to a fleet
// and Start it.
func NewAlarms(ctx context.Context, cfg AlarmConfig) (*Alarms, error) {
	th := cfg.Thresholds
	if th == (loa.AlarmThresholds{}) {
		th = loa.DefaultAlarmThresholds()
	}
	if err := th.Validate(); err != nil {
		return nil, err
	}
	if cfg.Tick <= 0 {
		cfg.Tick = min(max(th.Offline/10, 100*time.Millisecond), 15*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Alarms{cfg: cfg, th: th, log: cfg.Logger, now: cfg.Now, m: newAlarmMetrics(),
		active: map[alarmKey]loa.Alarm{}, area: map[string]string{}, online: map[string]bool{}, offSince: map[string]time.Time{},
		loss: map[string]lossWindow{}, watchers: map[*alarmWatcher]struct{}{}, plain: map[string]bool{}, unsync: map[string]time.Time{},
		stop: make(chan struct{}), stopped: make(chan struct{}), kick: make(chan struct{}, 1)}
	a.start = a.now()
	list, err := cfg.Store.Alarms(ctx, loa.AlarmFilter{Active: true})
	if err != nil {
		return nil, fmt.Errorf("devices: loading active alarms: %w", err)
	}
	for _, al := range list {
		k := alarmKey{al.Device, al.Kind}
		if _, dup := a.active[k]; dup {
			continue // newest first: an older duplicate stays as stored
		}
		a.active[k] = al
		a.m.active.WithLabelValues(al.Kind).Inc()
	}
	return a, nil
}

// Attach subscribes the evaluator to the fleet's telemetry, events,
// presence and command results, and uses the fleet's presence for the
// offline check.
func (a *Alarms) Attach(f *Fleet) (detach func()) {
	a.mu.Lock()
	a.fleet = f
	a.mu.Unlock()
	c := []func(){
		f.OnTelemetry(a.ObserveTelemetry),
		f.OnEvent(a.ObserveEvent),
		f.OnPresence(a.ObservePresence),
		f.OnCommandResult(a.ObserveCommand),
	}
	return func() {
		for _, fn := range c {
			fn()
		}
	}
}

// Start runs the periodic offline check (and a daily prune of alarms
// cleared more than loa.HealthRetention ago) until Close.
func (a *Alarms) Start() {
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	go func() {
		defer close(a.stopped)
		t := time.NewTicker(a.cfg.Tick)
		defer t.Stop()
		// A kick is served after kickDelay, so a burst of receivers coming
		// online is raised in one stored batch, not one write each.
		soon := time.NewTimer(time.Hour)
		soon.Stop()
		kicked := false
		var pruned time.Time
		for {
			ctx, cancel := context.WithTimeout(context.Background(), alarmTimeout)
			a.Check(ctx)
			if now := a.now(); now.Sub(pruned) >= 24*time.Hour {
				if _, err := a.cfg.Store.PruneAlarms(ctx, now.Add(-loa.HealthRetention)); err != nil {
					a.log.Error("alarms: prune failed; will retry", "err", err)
				} else {
					pruned = now
				}
			}
			cancel()
			for wait := true; wait; {
				select {
				case <-a.stop:
					soon.Stop()
					return
				case <-t.C:
					wait = false
				case <-a.kick:
					if !kicked {
						kicked = true
						soon.Reset(kickDelay)
					}
				case <-soon.C:
					wait = false
				}
			}
			kicked = false
		}
	}()
}

// kickDelay is how soon after a receiver's plain flag changes the alarms
// are checked.
const kickDelay = 500 * time.Millisecond

// Close stops the periodic check and closes every watcher.
func (a *Alarms) Close() {
	a.once.Do(func() { close(a.stop) })
	a.mu.Lock()
	started := a.started
	a.mu.Unlock()
	if started {
		<-a.stopped
	}
	a.mu.Lock()
	for w := range a.watchers {
		close(w.ch)
		delete(a.watchers, w)
	}
	a.mu.Unlock()
}

// Check raises an offline alarm for every registered device that has not
// been online for the offline threshold, and clears those of devices
// online again. Start calls it every tick.
func (a *Alarms) Check(ctx context.Context) {
	var list []*loa.Device
	if a.cfg.Directory != nil {
		var err error
		if list, err = a.cfg.Directory.Devices(ctx); err != nil {
			a.log.Error("alarms: listing devices; offline check skipped", "err", err)
			return
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	ids := make(map[string]bool, len(list))
	created := make(map[string]time.Time, len(list))
	for _, d := range list {
		ids[d.ID] = true
		a.area[d.ID] = d.AreaID
		created[d.ID] = d.CreatedAt
	}
	for id := range a.area {
		if !ids[id] && a.cfg.Directory != nil {
			delete(a.area, id) // deleted from the registry
		}
	}
	// Devices heard of but not registered (an external broker may let
	// them in) are checked too.
	online := maps.Clone(a.online)
	unknown := map[string]bool{}
	lastSeen := map[string]time.Time{}
	var ch []change
	if a.fleet != nil { // the fleet's state wins over notices (which can be dropped)
		for _, st := range a.fleet.States() {
			if st.Presence == loa.PresenceUnknown {
				// The controller's own link is (or was just) down: not the
				// device's fault, and no evidence either way.
				unknown[st.ID] = true
				continue
			}
			ids[st.ID] = true
			online[st.ID] = st.Online
			lastSeen[st.ID] = st.LastSeen
			if st.Online {
				a.plain[st.ID] = !st.HasCap(protocol.CapSRTPGCM)
			}
		}
	}
	for id, plain := range a.plain {
		if c, ok := a.plainChange(id, plain, now); ok {
			ch = append(ch, c)
		}
	}
	for id := range ids {
		k := alarmKey{id, loa.AlarmOffline}
		if unknown[id] {
			continue
		}
		if online[id] {
			delete(a.offSince, id)
			if al, ok := a.active[k]; ok {
				ch = append(ch, a.clearing(al, now, "online again"))
			}
			continue
		}
		since, ok := a.offSince[id]
		if !ok {
			// Not seen going offline: count from when this controller
			// started, the device was registered or it last spoke,
			// whichever is latest.
			since = a.start
			for _, t := range []time.Time{created[id], lastSeen[id]} {
				if t.After(since) {
					since = t
				}
			}
			a.offSince[id] = since
		}
		if _, raised := a.active[k]; !raised && now.Sub(since) >= a.th.Offline {
			off := now.Sub(since).Truncate(time.Second)
			ch = append(ch, a.raising(id, loa.AlarmOffline, loa.SeverityCritical, off.Seconds(), a.th.Offline.Seconds(), now,
				fmt.Sprintf("offline for %v (threshold %v)", off, a.th.Offline)))
		}
	}
	a.apply(ctx, ch)
}

// ObservePresence starts the offline clock of a device going offline and
// clears its offline alarm when it comes back. An online status says
// whether the receiver is a plain one; the next Check (soon, once Started)
// raises or clears its plain_receivers alarm, with others in one batch.
func (a *Alarms) ObservePresence(st loa.DeviceState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if st.Presence == loa.PresenceUnknown {
		return // the controller's link, not the device: its clock stays as it was
	}
	a.online[st.ID] = st.Online
	if !st.Online {
		a.offSince[st.ID] = now
		return
	}
	plain := !st.HasCap(protocol.CapSRTPGCM)
	if _, raised := a.active[alarmKey{st.ID, loa.AlarmPlainReceiver}]; raised != plain {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	a.plain[st.ID] = plain
	delete(a.offSince, st.ID)
	if al, ok := a.active[alarmKey{st.ID, loa.AlarmOffline}]; ok {
		a.applyOne(a.clearing(al, now, "online again"))
	}
}

// plainChange raises plain_receivers for a receiver whose last online
// status announced no srtp-gcm (contract v2: it gets plain RTP, which
// anyone on the path can forge) and clears it once one does. The alarm
// stays while the receiver is offline: its firmware has not changed. Call
// with mu held.
func (a *Alarms) plainChange(id string, plain bool, now time.Time) (change, bool) {
	al, on := a.active[alarmKey{id, loa.AlarmPlainReceiver}]
	switch {
	case plain && !on:
		return a.raising(id, loa.AlarmPlainReceiver, loa.SeverityWarning, 1, 0, now,
			fmt.Sprintf("announces no %s: its streams are plain RTP, unauthenticated; "+
				"update its firmware (-require-srtp refuses it)", protocol.CapSRTPGCM)), true
	case !plain && on:
		return a.clearing(al, now, "announces "+protocol.CapSRTPGCM), true
	}
	return change{}, false
}

// ObserveTelemetry checks temperature, sync, power and stream loss.
func (a *Alarms) ObserveTelemetry(id string, t loa.Telemetry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	var ch []change
	tk := alarmKey{id, loa.AlarmTemperature}
	if al, on := a.active[tk]; !on && t.TempC >= a.th.TempC {
		ch = append(ch, a.raising(id, loa.AlarmTemperature, loa.SeverityWarning, t.TempC, a.th.TempC, now,
			fmt.Sprintf("board temperature %.1f °C ≥ %.1f °C", t.TempC, a.th.TempC)))
	} else if on && t.TempC < a.th.TempClearC {
		ch = append(ch, a.clearing(al, now, fmt.Sprintf("board temperature %.1f °C < %.1f °C", t.TempC, a.th.TempClearC)))
	}

	if c, ok := a.syncChange(id, t.Sync, now); ok {
		ch = append(ch, c)
	}
	ch = append(ch, a.powerChanges(id, t.Power, now)...)

	lk := alarmKey{id, loa.AlarmStreamLoss}
	al, on := a.active[lk]
	if t.Stream == nil || t.Session == "" {
		delete(a.loss, id)
		if on {
			ch = append(ch, a.clearing(al, now, "stream ended"))
		}
		a.apply(context.Background(), ch)
		return
	}
	w := a.loss[id]
	d, next := streamDelta(w.mark, t.Session, t.Stream)
	if w.mark.session != t.Session {
		w.received, w.lost = 0, 0
	}
	w.mark = next
	w.received += d.received
	w.lost += d.lost
	if n := w.received + w.lost; n >= minLossWindow {
		pct := 100 * float64(w.lost) / float64(n)
		switch {
		case !on && pct > a.th.StreamLossPct:
			ch = append(ch, a.raising(id, loa.AlarmStreamLoss, loa.SeverityWarning, pct, a.th.StreamLossPct, now,
				fmt.Sprintf("stream loss %.1f %% over %d packets of session %s", pct, n, truncate(t.Session, 64))))
		case on && pct <= a.th.StreamLossPct/2:
			ch = append(ch, a.clearing(al, now, fmt.Sprintf("stream loss %.1f %%", pct)))
		}
		w.received, w.lost = 0, 0
	}
	a.loss[id] = w
	a.apply(context.Background(), ch)
}

// syncChange raises out_of_sync once a receiver's reported sync error has
// stayed above loa.OutOfSyncMs for loa.OutOfSyncFor (a slow start or one
// bad exchange is not an echo), and clears it below half of it or when
// the receiver stops reporting sync. a.mu must be held.
func (a *Alarms) syncChange(id string, s *loa.SyncStats, now time.Time) (change, bool) {
	k := alarmKey{id, loa.AlarmOutOfSync}
	al, on := a.active[k]
	if s == nil {
		delete(a.unsync, id)
		if on {
			return a.clearing(al, now, "no sync report"), true
		}
		return change{}, false
	}
	if s.ErrMs <= loa.OutOfSyncMs {
		delete(a.unsync, id)
		if on && s.ErrMs <= loa.OutOfSyncMs/2 {
			return a.clearing(al, now, fmt.Sprintf("sync error %.1f ms", s.ErrMs)), true
		}
		return change{}, false
	}
	since, seen := a.unsync[id]
	if !seen {
		a.unsync[id] = now
		return change{}, false
	}
	if on || now.Sub(since) < loa.OutOfSyncFor {
		return change{}, false
	}
	return a.raising(id, loa.AlarmOutOfSync, loa.SeverityWarning, s.ErrMs, loa.OutOfSyncMs, now,
		fmt.Sprintf("sync error %.1f ms > %.0f ms for %v (source %s)", s.ErrMs, loa.OutOfSyncMs,
			now.Sub(since).Round(time.Second), truncate(s.Source, 16))), true
}

// ObserveEvent raises an amp_fault alarm on amp_fault and clears it on amp_ok.
func (a *Alarms) ObserveEvent(id string, ev protocol.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	k := alarmKey{id, loa.AlarmAmpFault}
	al, on := a.active[k]
	switch {
	case ev.Type == protocol.EventAmpFault && !on:
		msg := "amplifier fault"
		if ev.Msg != "" {
			msg += ": " + truncate(ev.Msg, 200)
		}
		a.applyOne(a.raising(id, loa.AlarmAmpFault, loa.SeverityCritical, 1, 0, now, msg))
	case ev.Type == protocol.EventAmpOK && on:
		a.applyOne(a.clearing(al, now, "amplifier reports ok"))
	}
}

// ObserveCommand raises test_failed when a speaker test fails and clears
// it (and an amp_fault: the amplifier demonstrably plays) when one passes.
// Tests that got no answer change nothing: the offline alarm covers them.
func (a *Alarms) ObserveCommand(r loa.CommandResult, ack protocol.Ack) {
	if r.Op != protocol.OpTest || (ack.State != protocol.AckDone && ack.State != protocol.AckFailed) {
		return
	}
	res, err := protocol.DecodeTestResult(ack.Result)
	passed := ack.State == protocol.AckDone && (err != nil || res.Passed)
	if ack.State == protocol.AckFailed && err != nil && ack.Code != codeTestFailed {
		return // refused as invalid or unsupported: not a measurement
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	tk := alarmKey{r.Device, loa.AlarmTestFailed}
	al, on := a.active[tk]
	if passed {
		var ch []change
		if on {
			ch = append(ch, a.clearing(al, now, fmt.Sprintf("speaker test passed at %.1f dBFS", res.LevelDB)))
		}
		if amp, ok := a.active[alarmKey{r.Device, loa.AlarmAmpFault}]; ok {
			ch = append(ch, a.clearing(amp, now, "speaker test passed"))
		}
		a.apply(context.Background(), ch)
		return
	}
	if on {
		return
	}
	msg := "speaker test failed"
	if err == nil {
		msg = fmt.Sprintf("speaker test level %.1f dBFS below %.1f dBFS", res.LevelDB, protocol.TestPassLevelDBFS)
	} else if ack.Msg != "" {
		msg += ": " + truncate(ack.Msg, 200)
	}
	a.applyOne(a.raising(r.Device, loa.AlarmTestFailed, loa.SeverityCritical, res.LevelDB, protocol.TestPassLevelDBFS, now, msg))
}

// change is an alarm about to be raised or cleared.
type change struct {
	event string
	alarm loa.Alarm
}

// raising builds a new alarm. Call with mu held.
func (a *Alarms) raising(device, kind, severity string, value, threshold float64, now time.Time, msg string) change {
	// Ids sort in raise order (the store lists newest first by key).
	id := now.UnixNano()
	if id <= a.lastID {
		id = a.lastID + 1
	}
	a.lastID = id
	area, ok := a.area[device]
	if !ok && device != "" && a.cfg.Directory != nil {
		area = a.lookupArea(device)
	}
	return change{loa.AlarmRaised, loa.Alarm{
		ID: fmt.Sprintf("%016x-%s", id, randomHex(3)), Device: device, Area: area, Kind: kind,
		Severity: severity, Value: value, Threshold: threshold, Msg: msg, RaisedAt: now,
	}}
}

// lookupArea finds a device not yet seen by Check. Call with mu held.
func (a *Alarms) lookupArea(device string) string {
	ctx, cancel := context.WithTimeout(context.Background(), alarmTimeout)
	defer cancel()
	list, err := a.cfg.Directory.Devices(ctx)
	if err != nil {
		a.log.Warn("alarms: looking up a device's area", "device", device, "err", err)
		return ""
	}
	for _, d := range list {
		a.area[d.ID] = d.AreaID
	}
	return a.area[device]
}

// clearing builds the cleared form of al. Call with mu held.
func (a *Alarms) clearing(al loa.Alarm, now time.Time, why string) change {
	al.ClearedAt = now
	al.Msg += "; cleared: " + why
	return change{loa.AlarmCleared, al}
}

func (a *Alarms) applyOne(c change) { a.apply(context.Background(), []change{c}) }

// apply stores the changes in one transaction, then updates the active
// set and publishes them. If the store fails nothing changes, so the next
// observation or tick tries again. Call with mu held.
func (a *Alarms) apply(ctx context.Context, ch []change) {
	if len(ch) == 0 {
		return
	}
	list := make([]loa.Alarm, len(ch))
	for i := range ch {
		list[i] = ch[i].alarm
	}
	ctx, cancel := context.WithTimeout(ctx, alarmTimeout)
	defer cancel()
	if err := a.cfg.Store.PutAlarms(ctx, list); err != nil {
		a.log.Error("alarms: storing alarm changes; they will be retried", "changes", len(ch), "err", err)
		return
	}
	for _, c := range ch {
		k := alarmKey{c.alarm.Device, c.alarm.Kind}
		if c.event == loa.AlarmAcknowledged {
			a.active[k] = c.alarm
			a.log.Info("alarm acknowledged", "device", c.alarm.Device, "kind", c.alarm.Kind, "by", c.alarm.Ack.By)
		} else if c.event == loa.AlarmUpdated {
			a.active[k] = c.alarm
			a.log.Info("alarm updated", "device", c.alarm.Device, "kind", c.alarm.Kind, "msg", c.alarm.Msg)
		} else if c.event == loa.AlarmRaised {
			a.active[k] = c.alarm
			a.m.active.WithLabelValues(c.alarm.Kind).Inc()
			a.m.raised.WithLabelValues(c.alarm.Kind).Inc()
			a.log.Warn("alarm raised", "device", c.alarm.Device, "kind", c.alarm.Kind, "msg", c.alarm.Msg)
		} else {
			delete(a.active, k)
			a.m.active.WithLabelValues(c.alarm.Kind).Dec()
			a.log.Info("alarm cleared", "device", c.alarm.Device, "kind", c.alarm.Kind, "msg", c.alarm.Msg)
		}
		ac := loa.AlarmChange{Event: c.event, Alarm: c.alarm}
		for w := range a.watchers {
			select {
			case w.ch <- ac:
			default: // too far behind: end its stream; it watches again and gets the active set
				close(w.ch)
				delete(a.watchers, w)
			}
		}
		if a.cfg.OnChange != nil && c.event != loa.AlarmAcknowledged && c.event != loa.AlarmUpdated {
			a.cfg.OnChange(ac)
		}
	}
}

// AcknowledgeAlarm marks active alarm id as seen by by, with a note: it
// is stored and sent to watchers, and the alarm stays active until its
// condition clears. Acknowledging again replaces the acknowledgement. A
// cleared alarm is a conflict; an unknown one is not found.
func (a *Alarms) AcknowledgeAlarm(ctx context.Context, id, by, note string) (loa.Alarm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, al := range a.active {
		if al.ID != id {
			continue
		}
		al.Ack = &loa.AlarmAck{By: by, At: a.now().UTC(), Note: note}
		a.apply(ctx, []change{{loa.AlarmAcknowledged, al}})
		if got := a.active[k]; got.Ack == nil || *got.Ack != *al.Ack {
			return loa.Alarm{}, loa.Errorf(loa.EUNAVAILABLE, "alarm %s: the acknowledgement was not stored; try again", id)
		}
		return al, nil
	}
	list, err := a.cfg.Store.Alarms(ctx, loa.AlarmFilter{})
	if err != nil {
		return loa.Alarm{}, err
	}
	for _, al := range list {
		if al.ID == id {
			return loa.Alarm{}, loa.Errorf(loa.ECONFLICT, "alarm %s cleared at %s: nothing to acknowledge", id, al.ClearedAt.Format(time.RFC3339))
		}
	}
	return loa.Alarm{}, loa.Errorf(loa.ENOTFOUND, "alarm %q not found", id)
}

// Alarms returns stored alarms matching f, newest first (loa.AlarmService).
func (a *Alarms) Alarms(ctx context.Context, f loa.AlarmFilter) ([]loa.Alarm, error) {
	if f.Kind != "" && !loa.ValidAlarmKind(f.Kind) {
		return nil, loa.Errorf(loa.EINVALID, "kind: unknown alarm kind %q", f.Kind)
	}
	return a.cfg.Store.Alarms(ctx, f)
}

// Active returns the active alarms, newest first, from memory.
func (a *Alarms) Active() []loa.Alarm {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.activeLocked()
}

func (a *Alarms) activeLocked() []loa.Alarm {
	out := make([]loa.Alarm, 0, len(a.active))
	for _, al := range a.active {
		out = append(out, al)
	}
	slices.SortFunc(out, func(x, y loa.Alarm) int { return cmp.Compare(y.ID, x.ID) })
	return out
}

// WatchAlarms returns the active alarms and every change after them until
// ctx ends (loa.AlarmService).
func (a *Alarms) WatchAlarms(ctx context.Context) ([]loa.Alarm, <-chan loa.AlarmChange, error) {
	w := &alarmWatcher{ch: make(chan loa.AlarmChange, watchBuffer)}
	a.mu.Lock()
	select {
	case <-a.stop:
		a.mu.Unlock()
		return nil, nil, loa.Errorf(loa.EUNAVAILABLE, "alarms: shutting down")
	default:
	}
	active := a.activeLocked()
	a.watchers[w] = struct{}{}
	a.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-a.stop:
		}
		a.mu.Lock()
		if _, ok := a.watchers[w]; ok {
			close(w.ch)
			delete(a.watchers, w)
		}
		a.mu.Unlock()
	}()
	return active, w.ch, nil
}

// Collectors returns alarms active and raised, by kind.
func (a *Alarms) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.m.active, a.m.raised}
}
