package devices

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
)

// HealthStore keeps hourly aggregates (store.DB implements it).
type HealthStore interface {
	PutHealthHours(ctx context.Context, hours []loa.HealthHour) error
	HealthHours(ctx context.Context, device string, from, to time.Time) ([]loa.HealthHour, error)
	PruneHealth(ctx context.Context, cutoff time.Time) (int, error)
}

// HealthConfig configures a Health book.
type HealthConfig struct {
	Store         HealthStore
	FlushInterval time.Duration // how often completed hours are written; default 1m
	Retention     time.Duration // default loa.HealthRetention
	Now           func() time.Time
	Logger        *slog.Logger
}

// pendingLimit bounds completed hours waiting for a store that keeps
// failing; beyond it the oldest are dropped (and logged).
const pendingLimit = 1 << 18

// Health folds every telemetry sample and presence change into the
// current hour's aggregate per device, in memory, and writes completed
// hours in one transaction per flush; once a day it prunes hours older
// than the retention. Raw samples are never stored.
type Health struct {
	cfg  HealthConfig
	log  *slog.Logger
	now  func() time.Time
	hist *streamHistograms

	mu      sync.Mutex
	devs    map[string]*healthDev
	done    []loa.HealthHour // completed, not yet written
	pruned  time.Time        // last prune
	started bool
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// healthDev is one device's hour in progress.
type healthDev struct {
	agg      *loa.HealthHour // nil until something happens in the hour
	online   bool
	onlineAt time.Time // start of the online time not yet counted
	mark     streamMark
}

// streamMark is the last cumulative stream counters seen from a device:
// receivers count per session, so increments are taken within a session.
type streamMark struct {
	session                                string
	received, lost, late, concealed, fecRx uint64
	valid                                  bool
}

// streamDelta returns what happened between mark and cur, and the new
// mark. A new session (or counters that went back: a reboot) counts from 0.
func streamDelta(mark streamMark, session string, cur *loa.StreamStats) (d, next streamMark) {
	next = streamMark{session: session, received: cur.Received, lost: cur.Lost, late: cur.Late,
		concealed: cur.Concealed, fecRx: cur.FECRecovered, valid: true}
	if !mark.valid || mark.session != session || cur.Received < mark.received || cur.Lost < mark.lost ||
		cur.Late < mark.late || cur.Concealed < mark.concealed || cur.FECRecovered < mark.fecRx {
		return next, next
	}
	return streamMark{received: cur.Received - mark.received, lost: cur.Lost - mark.lost, late: cur.Late - mark.late,
		concealed: cur.Concealed - mark.concealed, fecRx: cur.FECRecovered - mark.fecRx, valid: true}, next
}

// NewHealth returns a Health book; call Start to flush periodically.
func NewHealth(cfg HealthConfig) *Health {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Minute
	}
	if cfg.Retention <= 0 {
		cfg.Retention = loa.HealthRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Health{cfg: cfg, log: cfg.Logger, now: cfg.Now, hist: newStreamHistograms(),
		devs: map[string]*healthDev{}, stop: make(chan struct{}), stopped: make(chan struct{})}
}

// Attach feeds the book from the fleet's telemetry and presence, starting
// with the devices online now; the returned function detaches it.
func (h *Health) Attach(f *Fleet) (detach func()) {
	c1 := f.OnTelemetry(h.ObserveTelemetry)
	c2 := f.OnPresence(func(st loa.DeviceState) { h.ObservePresence(st.ID, st.Online, h.now()) })
	now := h.now()
	for _, st := range f.States() {
		if st.Online { // a presence notice racing this one is a no-op
			h.ObservePresence(st.ID, true, now)
		}
	}
	return func() { c1(); c2() }
}

func (h *Health) dev(id string) *healthDev {
	d := h.devs[id]
	if d == nil {
		d = &healthDev{}
		h.devs[id] = d
	}
	return d
}

// ObserveTelemetry folds one sample, timed by t.At, into its hour.
func (h *Health) ObserveTelemetry(id string, t loa.Telemetry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.dev(id)
	h.roll(id, d, t.At)
	a := h.ensure(id, d, t.At)
	a.Samples++
	if a.Samples == 1 {
		a.RSSIMin, a.RSSIMax, a.TempMaxC = t.RSSI, t.RSSI, t.TempC
	}
	a.RSSIMin, a.RSSIMax = min(a.RSSIMin, t.RSSI), max(a.RSSIMax, t.RSSI)
	a.RSSIAvg += (float64(t.RSSI) - a.RSSIAvg) / float64(a.Samples)
	a.TempMaxC = max(a.TempMaxC, t.TempC)
	a.VolumeLast = t.Volume
	if t.Stream == nil || t.Session == "" {
		d.mark = streamMark{}
		return
	}
	delta, next := streamDelta(d.mark, t.Session, t.Stream)
	d.mark = next
	a.Received += delta.received
	a.Lost += delta.lost
	a.Late += delta.late
	a.Concealed += delta.concealed
	a.FECRecovered += delta.fecRx
	a.JitterMaxMs = max(a.JitterMaxMs, t.Stream.JitterMs)
	h.hist.observe(delta, t.Stream.JitterMs)
}

// ObservePresence records a device coming online or going offline at now,
// for the online seconds of its hours.
func (h *Health) ObservePresence(id string, online bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.dev(id)
	h.roll(id, d, now)
	switch {
	case online && !d.online:
		d.online, d.onlineAt = true, now
		h.ensure(id, d, now)
	case !online && d.online:
		h.accrue(id, d, now)
		d.online = false
	}
}

// ensure returns the device's aggregate of the hour of at, creating it.
func (h *Health) ensure(id string, d *healthDev, at time.Time) *loa.HealthHour {
	if d.agg == nil {
		d.agg = &loa.HealthHour{Device: id, Hour: at.UTC().Truncate(time.Hour)}
	}
	return d.agg
}

// accrue counts the online time from onlineAt up to upto, which must be
// within the aggregate's hour (roll first).
func (h *Health) accrue(id string, d *healthDev, upto time.Time) {
	if !d.online || !upto.After(d.onlineAt) {
		return
	}
	a := h.ensure(id, d, d.onlineAt)
	a.OnlineSeconds = min(a.OnlineSeconds+upto.Sub(d.onlineAt).Seconds(), time.Hour.Seconds())
	d.onlineAt = upto
}

// roll completes the device's hours that ended before now: the aggregate
// in progress and, for a device online throughout, the hours it was
// silently online.
func (h *Health) roll(id string, d *healthDev, now time.Time) {
	hour := now.UTC().Truncate(time.Hour)
	if d.agg != nil && d.agg.Hour.Before(hour) {
		h.accrue(id, d, d.agg.Hour.Add(time.Hour))
		h.complete(*d.agg)
		d.agg = nil
	}
	if d.online && d.onlineAt.Before(hour) {
		from := d.onlineAt.UTC().Truncate(time.Hour)
		if oldest := hour.Add(-h.cfg.Retention); from.Before(oldest) {
			from = oldest // a clock jump must not make millions of hours
		}
		for at := from; at.Before(hour); at = at.Add(time.Hour) {
			start := at
			if d.onlineAt.After(at) {
				start = d.onlineAt
			}
			h.complete(loa.HealthHour{Device: id, Hour: at, OnlineSeconds: at.Add(time.Hour).Sub(start).Seconds()})
		}
		d.onlineAt = hour
	}
}

func (h *Health) complete(a loa.HealthHour) {
	if len(h.done) >= pendingLimit {
		h.log.Error("health: store behind; dropping the oldest completed hour", "device", h.done[0].Device, "hour", h.done[0].Hour)
		h.done = h.done[1:]
	}
	h.done = append(h.done, a)
}

// Flush completes every hour that ended before now and writes the
// completed hours in one transaction; on failure they are kept for the
// next flush.
func (h *Health) Flush(ctx context.Context) error {
	return h.flush(ctx, false)
}

// flush with partial also writes the hours in progress (at Close: the
// store merges them with the rest of the hour after a restart).
func (h *Health) flush(ctx context.Context, partial bool) error {
	now := h.now()
	h.mu.Lock()
	for id, d := range h.devs {
		h.roll(id, d, now)
		if partial {
			h.accrue(id, d, now)
			if d.agg != nil {
				h.complete(*d.agg)
				d.agg = nil
			}
		}
		if d.agg == nil && !d.online && !d.mark.valid {
			delete(h.devs, id) // nothing in progress: forget the device until it speaks
		}
	}
	batch := h.done
	h.done = nil
	h.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := h.cfg.Store.PutHealthHours(ctx, batch); err != nil {
		h.mu.Lock()
		h.done = append(batch, h.done...)
		h.mu.Unlock()
		return fmt.Errorf("devices: writing %d health hours: %w", len(batch), err)
	}
	return nil
}

// Prune deletes hours older than the retention.
func (h *Health) Prune(ctx context.Context) (int, error) {
	n, err := h.cfg.Store.PruneHealth(ctx, h.now().Add(-h.cfg.Retention))
	if err != nil {
		return 0, fmt.Errorf("devices: pruning health hours: %w", err)
	}
	return n, nil
}

// Start flushes every FlushInterval and prunes once a day until Close.
func (h *Health) Start() {
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	go func() {
		defer close(h.stopped)
		t := time.NewTicker(h.cfg.FlushInterval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := h.Flush(ctx); err != nil {
				h.log.Error("health: flush failed; will retry", "err", err)
			}
			if now := h.now(); now.Sub(h.pruned) >= 24*time.Hour {
				if n, err := h.Prune(ctx); err != nil {
					h.log.Error("health: prune failed; will retry", "err", err)
				} else {
					h.pruned = now
					h.log.Debug("health: pruned old hours", "deleted", n)
				}
			}
			cancel()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the loop (if started) and writes every hour, the ones in
// progress included.
func (h *Health) Close(ctx context.Context) error {
	h.once.Do(func() { close(h.stop) })
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if started {
		select {
		case <-h.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.flush(ctx, true)
}

// HealthHistory returns the device's hours starting within [from, to),
// oldest first, the hour in progress included (loa.HealthService).
func (h *Health) HealthHistory(ctx context.Context, device string, from, to time.Time) ([]loa.HealthHour, error) {
	if err := loa.ValidateID("device", device); err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, loa.Errorf(loa.EINVALID, "from: must be before to")
	}
	out, err := h.cfg.Store.HealthHours(ctx, device, from, to)
	if err != nil {
		return nil, err
	}
	now := h.now()
	h.mu.Lock()
	var cur *loa.HealthHour
	if d := h.devs[device]; d != nil && d.agg != nil {
		c := *d.agg
		if d.online && now.After(d.onlineAt) && now.Sub(c.Hour) < time.Hour {
			c.OnlineSeconds = min(c.OnlineSeconds+now.Sub(d.onlineAt).Seconds(), time.Hour.Seconds())
		}
		cur = &c
	}
	h.mu.Unlock()
	if cur == nil || cur.Hour.Before(from) || !cur.Hour.Before(to) {
		return out, nil
	}
	if n := len(out); n > 0 && out[n-1].Hour.Equal(cur.Hour) {
		out[n-1].Merge(*cur) // written before a restart within this hour
		return out, nil
	}
	return append(out, *cur), nil
}

// Collectors returns the stream quality histograms.
func (h *Health) Collectors() []prometheus.Collector { return h.hist.collectors() }
