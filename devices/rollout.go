package devices

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// RolloutStore persists rollouts (store.DB implements it).
type RolloutStore interface {
	PutRollout(ctx context.Context, r *loa.Rollout) error
	Rollouts(ctx context.Context) ([]*loa.Rollout, error)
	Rollout(ctx context.Context, id string) (*loa.Rollout, error)
}

// FirmwareSender sends one firmware command and waits for its final ack
// until ctx ends (Fleet implements it).
type FirmwareSender interface {
	SendFirmware(ctx context.Context, deviceID string, args protocol.FirmwareArgs, progress func(protocol.Ack)) (protocol.Ack, error)
}

// PresenceReader reports what the controller knows of a device now (Fleet
// implements it).
type PresenceReader interface {
	DeviceState(id string) (loa.DeviceState, bool)
}

// FirmwareArgsFunc returns the command args for an image: its URL, size,
// hash and signature.
type FirmwareArgsFunc func(ctx context.Context, imageID string) (protocol.FirmwareArgs, error)

// RolloutConfig configures a RolloutEngine.
type RolloutConfig struct {
	Store       RolloutStore
	Sender      FirmwareSender
	Presence    PresenceReader
	Args        FirmwareArgsFunc
	Concurrency int           // devices of one rollout updating at once; default 100
	Poll        time.Duration // how often a waiting device's presence is checked; default 1s
	// SaveEvery bounds how often device progress alone is written: a
	// rollout is stored whole, and a province's is large. Changes of the
	// rollout's state or wave are written at once. Default 250ms.
	SaveEvery time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// RolloutEngine runs firmware rollouts in waves. Every change is written
// to the store, and Open continues the rollouts a previous run left
// running, so a controller restart loses nothing.
//
// A wave sends the image to its devices, at most Concurrency at once. A
// device already at or above the version is skipped_current; one offline
// until the wave times out is offline, which is no failure. The next wave
// starts once every device of the wave is final and the failures are
// within FailThreshold of the wave's attempted devices; more failures
// pause the rollout at once, with the counts in Reason. Resuming accepts
// the failures so far and retries the wave's offline devices. Pause and
// Abort stop sending; commands already sent are still followed to the end.
type RolloutEngine struct {
	cfg RolloutConfig
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex // guards runs and every run's rollout and fields
	runs map[string]*run

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// run is one rollout the engine is running or holding paused.
type run struct {
	r        *loa.Rollout
	args     protocol.FirmwareArgs
	started  map[int]bool // device indexes with a worker
	inflight int
	dirty    bool          // changed since the last snapshot
	urgent   bool          // the rollout itself changed: store it now
	lastSave time.Time     // monotonic, for SaveEvery
	timer    bool          // a delayed wake for a deferred save is set
	wake     chan struct{} // capacity 1

	seq     uint64     // snapshot counter, under RolloutEngine.mu
	saveMu  sync.Mutex // orders writes; guards saved
	saved   uint64
	stopped chan struct{} // closed when the run's loop returns
}

// NewRolloutEngine returns an engine; call Open to continue stored
// rollouts.
func NewRolloutEngine(cfg RolloutConfig) *RolloutEngine {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 100
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &RolloutEngine{cfg: cfg, log: cfg.Logger, now: cfg.Now, runs: map[string]*run{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Open continues every stored rollout that is running or paused. The
// current wave's timeout starts again: devices must not be counted offline
// for the time the controller was down.
func (e *RolloutEngine) Open(ctx context.Context) error {
	list, err := e.cfg.Store.Rollouts(ctx)
	if err != nil {
		return fmt.Errorf("rollouts: %w", err)
	}
	for _, r := range list {
		if r.Final() {
			continue
		}
		args, err := e.cfg.Args(ctx, r.ImageID)
		if err != nil {
			e.log.Error("rollout cannot continue: its image is gone", "rollout", r.ID, "image", r.ImageID, "err", err)
			r.State, r.Reason, r.EndedAt = loa.RolloutAborted, "image "+r.ImageID+" is no longer available", e.now().UTC()
			if err := e.cfg.Store.PutRollout(ctx, r); err != nil {
				return fmt.Errorf("rollouts: %w", err)
			}
			continue
		}
		r.WaveStarted = e.now().UTC()
		e.log.Info("rollout continues", "rollout", r.ID, "state", r.State, "wave", r.Wave)
		e.start(r, args)
	}
	return nil
}

// Close stops every rollout without changing its stored state; Open in the
// next run continues them.
func (e *RolloutEngine) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// PlanWaves orders devices by the SHA-256 of their ids, which spreads each
// wave across communes and keeps the order stable for a fleet, and
// assigns each to the first wave whose cumulative percentage covers its
// position. waves must be valid (loa.Rollout.Validate).
func PlanWaves(devices []string, waves []int) []loa.RolloutDevice {
	ids := slices.Clone(devices)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	key := func(id string) [32]byte { return sha256.Sum256([]byte(id)) }
	slices.SortFunc(ids, func(a, b string) int {
		ka, kb := key(a), key(b)
		return cmp.Or(bytes.Compare(ka[:], kb[:]), cmp.Compare(a, b))
	})
	out := make([]loa.RolloutDevice, len(ids))
	w := 0
	for i, id := range ids {
		for w < len(waves)-1 && i >= waveEnd(len(ids), waves[w]) {
			w++
		}
		out[i] = loa.RolloutDevice{Device: id, Wave: w, State: loa.RolloutDevicePending}
	}
	return out
}

// waveEnd is how many of n devices the waves up to one of percent cover.
func waveEnd(n, percent int) int { return int(math.Ceil(float64(n) * float64(percent) / 100)) }

// Start plans r over devices (resolved from r.Targets by the caller),
// stores it and starts its first wave. r must be normalised and valid;
// Start fills ID, State, Devices and the times.
func (e *RolloutEngine) Start(ctx context.Context, r *loa.Rollout, devices []string) error {
	if len(devices) == 0 {
		return loa.Errorf(loa.EINVALID, "targets: no device in the targets")
	}
	args, err := e.cfg.Args(ctx, r.ImageID)
	if err != nil {
		return err
	}
	// Two rollouts sending one device different images would fight.
	want := make(map[string]bool, len(devices))
	for _, id := range devices {
		want[id] = true
	}
	e.mu.Lock()
	for _, rn := range e.runs {
		if rn.r.Final() {
			continue
		}
		for _, d := range rn.r.Devices {
			if want[d.Device] {
				e.mu.Unlock()
				// Not the rollout's id: it may reach beyond the caller's scope.
				return loa.Errorf(loa.ECONFLICT, "targets: device %s is in another rollout (%s); abort that one first", d.Device, rn.r.State)
			}
		}
	}
	e.mu.Unlock()
	now := e.now().UTC()
	r.ID = "ro-" + randomHex(8)
	r.Version = args.Version
	r.State, r.Wave, r.Accepted, r.AutoPaused, r.Reason = loa.RolloutRunning, 0, 0, false, ""
	r.CreatedAt, r.UpdatedAt, r.WaveStarted = now, now, now
	r.Devices = PlanWaves(devices, r.Waves)
	if err := e.cfg.Store.PutRollout(ctx, r); err != nil {
		return err
	}
	e.log.Info("rollout started", "rollout", r.ID, "image", r.ImageID, "version", r.Version,
		"devices", len(r.Devices), "waves", r.Waves, "by", r.CreatedBy)
	e.start(cloneRollout(r), args)
	return nil
}

func (e *RolloutEngine) start(r *loa.Rollout, args protocol.FirmwareArgs) {
	rn := &run{r: r, args: args, started: map[int]bool{}, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	e.mu.Lock()
	e.runs[r.ID] = rn
	e.mu.Unlock()
	e.wg.Add(1)
	go e.loop(rn)
}

// Get returns a copy of the rollout with id.
func (e *RolloutEngine) Get(ctx context.Context, id string) (*loa.Rollout, error) {
	e.mu.Lock()
	if rn := e.runs[id]; rn != nil {
		defer e.mu.Unlock()
		return cloneRollout(rn.r), nil
	}
	e.mu.Unlock()
	return e.cfg.Store.Rollout(ctx, id)
}

// List returns every rollout, newest first, the live ones as they are now.
func (e *RolloutEngine) List(ctx context.Context) ([]*loa.Rollout, error) {
	list, err := e.cfg.Store.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range list {
		if rn := e.runs[r.ID]; rn != nil {
			list[i] = cloneRollout(rn.r)
		}
	}
	return list, nil
}

// Pause stops sending the rollout to more devices.
func (e *RolloutEngine) Pause(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return e.change(ctx, id, func(r *loa.Rollout) error {
		if r.State != loa.RolloutRunning {
			return loa.Errorf(loa.ECONFLICT, "rollout %s is %s, not running", id, r.State)
		}
		r.State, r.AutoPaused = loa.RolloutPaused, false
		r.Reason = cmp.Or(reason, "paused by an operator")
		return nil
	})
}

// Resume continues a paused rollout. The failures of the current wave so
// far are accepted, its offline devices are tried again and its timeout
// starts again.
func (e *RolloutEngine) Resume(ctx context.Context, id string) (*loa.Rollout, error) {
	return e.change(ctx, id, func(r *loa.Rollout) error {
		if r.State != loa.RolloutPaused {
			return loa.Errorf(loa.ECONFLICT, "rollout %s is %s, not paused", id, r.State)
		}
		now := e.now().UTC()
		if r.AutoPaused {
			r.Accepted = waveCount(r, loa.RolloutDeviceFailed)
		}
		for i := range r.Devices {
			if d := &r.Devices[i]; d.Wave == r.Wave && d.State == loa.RolloutDeviceOffline {
				d.State, d.Code, d.Msg, d.UpdatedAt = loa.RolloutDevicePending, "", "", now
			}
		}
		r.State, r.Reason, r.AutoPaused, r.WaveStarted = loa.RolloutRunning, "", false, now
		return nil
	})
}

// Abort ends the rollout: no device is sent the image any more.
func (e *RolloutEngine) Abort(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return e.change(ctx, id, func(r *loa.Rollout) error {
		if r.Final() {
			return loa.Errorf(loa.ECONFLICT, "rollout %s is already %s", id, r.State)
		}
		r.State, r.AutoPaused, r.EndedAt = loa.RolloutAborted, false, e.now().UTC()
		r.Reason = cmp.Or(reason, "aborted by an operator")
		return nil
	})
}

// change applies fn to a live rollout, stores it and wakes its loop.
func (e *RolloutEngine) change(ctx context.Context, id string, fn func(r *loa.Rollout) error) (*loa.Rollout, error) {
	e.mu.Lock()
	rn := e.runs[id]
	if rn == nil {
		e.mu.Unlock()
		r, err := e.cfg.Store.Rollout(ctx, id)
		if err != nil {
			return nil, err
		}
		return nil, loa.Errorf(loa.ECONFLICT, "rollout %s is already %s", id, r.State)
	}
	if err := fn(rn.r); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	rn.r.UpdatedAt = e.now().UTC()
	snap, seq := e.snapshot(rn)
	e.mu.Unlock()
	wake(rn)
	if err := e.save(ctx, rn, snap, seq); err != nil {
		return nil, err
	}
	e.log.Info("rollout changed", "rollout", id, "state", snap.State, "reason", snap.Reason)
	return cloneRollout(snap), nil
}

// snapshot copies rn's rollout for saving; e.mu is held.
func (e *RolloutEngine) snapshot(rn *run) (*loa.Rollout, uint64) {
	rn.seq++
	rn.dirty, rn.urgent, rn.lastSave = false, false, time.Now()
	return cloneRollout(rn.r), rn.seq
}

// save writes a snapshot unless a newer one is already written, so
// concurrent saves never leave an older state in the store.
func (e *RolloutEngine) save(ctx context.Context, rn *run, snap *loa.Rollout, seq uint64) error {
	rn.saveMu.Lock()
	defer rn.saveMu.Unlock()
	if seq <= rn.saved {
		return nil
	}
	// A shutdown must not lose the last change.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.cfg.Store.PutRollout(ctx, snap); err != nil {
		return fmt.Errorf("rollout %s: %w", snap.ID, err)
	}
	rn.saved = seq
	return nil
}

func wake(rn *run) {
	select {
	case rn.wake <- struct{}{}:
	default:
	}
}

// loop drives one rollout: it starts workers for the current wave, judges
// the wave when its devices are final, and stores every change.
func (e *RolloutEngine) loop(rn *run) {
	defer e.wg.Done()
	defer close(rn.stopped)
	for {
		e.mu.Lock()
		e.step(rn)
		r := rn.r
		done := r.Final() && rn.inflight == 0
		var snap *loa.Rollout
		var seq uint64
		switch wait := e.cfg.SaveEvery - time.Since(rn.lastSave); {
		case done || rn.urgent || rn.dirty && wait <= 0:
			r.UpdatedAt = e.now().UTC()
			snap, seq = e.snapshot(rn)
		case rn.dirty && !rn.timer:
			rn.timer = true
			time.AfterFunc(wait, func() {
				e.mu.Lock()
				rn.timer = false
				e.mu.Unlock()
				wake(rn)
			})
		}
		if done {
			delete(e.runs, r.ID)
		}
		e.mu.Unlock()
		if snap != nil {
			if err := e.save(e.ctx, rn, snap, seq); err != nil {
				e.log.Error("rollout state not stored", "rollout", snap.ID, "err", err)
			}
		}
		if done {
			e.log.Info("rollout ended", "rollout", r.ID, "state", snap.State, "reason", snap.Reason)
			return
		}
		select {
		case <-rn.wake:
		case <-e.ctx.Done():
			e.mu.Lock() // store what a deferred save still holds
			if rn.dirty {
				snap, seq = e.snapshot(rn)
			} else {
				snap = nil
			}
			e.mu.Unlock()
			if snap != nil {
				if err := e.save(e.ctx, rn, snap, seq); err != nil {
					e.log.Error("rollout state not stored", "rollout", snap.ID, "err", err)
				}
			}
			return
		}
	}
}

// step advances rn as far as it can now; e.mu is held.
func (e *RolloutEngine) step(rn *run) {
	r := rn.r
	for r.State == loa.RolloutRunning {
		if r.Wave >= len(r.Waves) {
			r.State, r.EndedAt, rn.dirty = loa.RolloutCompleted, e.now().UTC(), true
			return
		}
		for i := range r.Devices {
			if rn.inflight >= e.cfg.Concurrency {
				break
			}
			d := &r.Devices[i]
			if d.Wave != r.Wave || rn.started[i] || loa.RolloutDeviceFinal(d.State) {
				continue
			}
			rn.started[i] = true
			rn.inflight++
			e.wg.Add(1)
			go e.work(rn, i, r.WaveStarted.Add(r.WaveTimeout))
		}
		if over, reason := overThreshold(r); over {
			r.State, r.AutoPaused, r.Reason, rn.dirty, rn.urgent = loa.RolloutPaused, true, reason, true, true
			e.log.Warn("rollout paused: too many failures", "rollout", r.ID, "reason", reason)
			return
		}
		for _, d := range r.Devices {
			if d.Wave == r.Wave && !loa.RolloutDeviceFinal(d.State) {
				return // the wave is still going
			}
		}
		e.log.Info("rollout wave done", "rollout", r.ID, "wave", r.Wave+1, "percent", r.Waves[r.Wave],
			"done", waveCount(r, loa.RolloutDeviceDone), "failed", waveCount(r, loa.RolloutDeviceFailed),
			"offline", waveCount(r, loa.RolloutDeviceOffline))
		r.Wave++
		r.Accepted = 0
		r.WaveStarted = e.now().UTC()
		rn.dirty, rn.urgent = true, true
	}
}

// overThreshold reports whether the current wave's failures, beyond those
// accepted, exceed the threshold of its attempted devices (those neither
// skipped nor offline). Failures only grow and the attempted count only
// shrinks, so crossing it early is as final as crossing it at the end.
func overThreshold(r *loa.Rollout) (bool, string) {
	var n, failed int
	for _, d := range r.Devices {
		if d.Wave != r.Wave {
			continue
		}
		switch d.State {
		case loa.RolloutDeviceSkipped, loa.RolloutDeviceOffline:
		case loa.RolloutDeviceFailed:
			failed++
			n++
		default:
			n++
		}
	}
	if failed-r.Accepted <= 0 || float64(failed-r.Accepted) <= r.FailThreshold*float64(n) {
		return false, ""
	}
	return true, fmt.Sprintf("wave %d (%d%%): %d of %d devices failed, over the threshold of %g%%",
		r.Wave+1, r.Waves[r.Wave], failed, n, r.FailThreshold*100)
}

func waveCount(r *loa.Rollout, state string) int {
	n := 0
	for _, d := range r.Devices {
		if d.Wave == r.Wave && d.State == state {
			n++
		}
	}
	return n
}

// work takes one device through the update until deadline: wait for it to
// be online, send the command, follow its acks.
func (e *RolloutEngine) work(rn *run, i int, deadline time.Time) {
	defer e.wg.Done()
	ctx, cancel := context.WithDeadline(e.ctx, deadline)
	defer cancel()
	e.mu.Lock()
	id, target := rn.r.Devices[i].Device, rn.args.Version
	// A device in flight before (a restart) may have updated meanwhile.
	resent := rn.r.Devices[i].State != loa.RolloutDevicePending
	e.mu.Unlock()

	final := func(state, code, msg, version string) {
		e.update(rn, i, func(d *loa.RolloutDevice) {
			d.State, d.Code, d.Msg = state, code, truncate(msg, 200)
			if version != "" {
				d.Version = version
			}
		})
	}
	defer func() {
		e.mu.Lock()
		rn.inflight--
		delete(rn.started, i)
		rn.dirty = true
		e.mu.Unlock()
		wake(rn)
	}()

	for {
		// Already there? Telemetry tells the running version.
		if v, ok := e.runningVersion(id); ok && compareVersions(v, target) >= 0 {
			if resent {
				final(loa.RolloutDeviceDone, "", "", v)
			} else {
				final(loa.RolloutDeviceSkipped, "", "already running "+v, v)
			}
			return
		}
		switch e.waitOnline(ctx, rn, id) {
		case waitedStopped:
			return // paused, aborted or shutting down: send nothing; resume starts again
		case waitedOffline:
			final(loa.RolloutDeviceOffline, "", "offline for the whole wave", "")
			return
		}
		e.mu.Lock()
		if rn.r.State != loa.RolloutRunning { // paused or aborted while waiting: send nothing
			e.mu.Unlock()
			return
		}
		d := &rn.r.Devices[i]
		d.State, d.Code, d.Msg, d.UpdatedAt = loa.RolloutDeviceSent, "", "", e.now().UTC()
		rn.dirty = true
		e.mu.Unlock()
		wake(rn)

		ack, err := e.cfg.Sender.SendFirmware(ctx, id, rn.args, func(a protocol.Ack) { e.progress(rn, i, a) })
		if e.ctx.Err() != nil {
			return // shutting down: the next Open follows the device up
		}
		var res protocol.FirmwareResult
		if len(ack.Result) > 0 {
			_ = json.Unmarshal(ack.Result, &res) // the version is a report, not a decision
		}
		switch {
		case err == nil:
			final(loa.RolloutDeviceDone, "", "", cmp.Or(res.Version, target))
			return
		case ack.State == protocol.AckFailed && ack.Code == protocol.FWDowngrade:
			if resent {
				final(loa.RolloutDeviceDone, "", "runs the version already: "+ack.Msg, res.Version)
			} else {
				final(loa.RolloutDeviceSkipped, ack.Code, ack.Msg, res.Version)
			}
			return
		case ack.State == protocol.AckFailed && ack.Code == protocol.FWBusy:
			// Still busy with an earlier command (one sent before a
			// restart): ask again later.
			resent = true
			if !sleepCtx(ctx, e.cfg.Poll) {
				final(loa.RolloutDeviceFailed, protocol.FWBusy, ack.Msg, "")
				return
			}
		case ack.State == protocol.AckFailed:
			final(loa.RolloutDeviceFailed, cmp.Or(ack.Code, "failed"), ack.Msg, res.Version)
			return
		case ack.State == protocol.AckExpired:
			final(loa.RolloutDeviceFailed, protocol.AckExpired, ack.Msg, "")
			return
		case ack.State == "" && loa.ErrorCode(err) == loa.EUNAVAILABLE && ctx.Err() == nil:
			// Not sent: the device went offline meanwhile. Wait again.
			e.update(rn, i, func(d *loa.RolloutDevice) { d.State, d.Msg = loa.RolloutDevicePending, loa.ErrorMessage(err) })
			if !sleepCtx(ctx, e.cfg.Poll) {
				if e.ctx.Err() == nil {
					final(loa.RolloutDeviceOffline, "", "offline for the whole wave", "")
				}
				return
			}
		default:
			// No final ack before the wave timed out. A receiver that never
			// comes back from an update is the failure that matters most.
			final(loa.RolloutDeviceFailed, loa.ETIMEOUT, loa.ErrorMessage(err), "")
			return
		}
	}
}

// update changes device i and wakes the loop to store it.
func (e *RolloutEngine) update(rn *run, i int, fn func(d *loa.RolloutDevice)) {
	e.mu.Lock()
	d := &rn.r.Devices[i]
	fn(d)
	d.UpdatedAt = e.now().UTC()
	rn.dirty = true
	e.mu.Unlock()
	wake(rn)
}

// progress follows a device's accepted and progress acks. It runs on the
// fleet's handler goroutine, so it only updates memory.
func (e *RolloutEngine) progress(rn *run, i int, a protocol.Ack) {
	if a.State != protocol.AckProgress {
		return
	}
	var p protocol.FirmwareProgress
	if json.Unmarshal(a.Result, &p) != nil {
		return
	}
	state := ""
	switch p.Phase {
	case protocol.FWPhaseDownloading, protocol.FWPhaseVerifying:
		state = loa.RolloutDeviceDownloading
	case protocol.FWPhaseInstalling:
		state = loa.RolloutDeviceInstalling
	case protocol.FWPhaseRebooting:
		state = loa.RolloutDeviceRebooting
	default:
		return
	}
	e.mu.Lock()
	d := &rn.r.Devices[i]
	if d.State == state || loa.RolloutDeviceFinal(d.State) {
		e.mu.Unlock()
		return // byte counts alone are not worth a write
	}
	d.State, d.UpdatedAt = state, e.now().UTC()
	rn.dirty = true
	e.mu.Unlock()
	wake(rn)
}

// runningVersion is the firmware version the device last reported.
func (e *RolloutEngine) runningVersion(id string) (string, bool) {
	st, ok := e.cfg.Presence.DeviceState(id)
	if !ok || st.Telemetry == nil || st.Telemetry.Firmware == "" {
		return "", false
	}
	if _, err := protocol.ParseFWVersion(st.Telemetry.Firmware); err != nil {
		return "", false
	}
	return st.Telemetry.Firmware, true
}

const (
	waitedOnline = iota
	waitedOffline
	waitedStopped
)

// waitOnline polls presence until the device is online (waitedOnline), ctx
// ends (waitedOffline) or the rollout stops running or the engine closes
// (waitedStopped).
func (e *RolloutEngine) waitOnline(ctx context.Context, rn *run, id string) int {
	for {
		e.mu.Lock()
		running := rn.r.State == loa.RolloutRunning
		e.mu.Unlock()
		if !running || e.ctx.Err() != nil {
			return waitedStopped
		}
		if st, ok := e.cfg.Presence.DeviceState(id); ok && st.Online {
			return waitedOnline
		}
		if !sleepCtx(ctx, e.cfg.Poll) {
			if e.ctx.Err() != nil {
				return waitedStopped
			}
			return waitedOffline
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// compareVersions compares two valid versions; an invalid one is older.
func compareVersions(a, b string) int {
	va, errA := protocol.ParseFWVersion(a)
	vb, errB := protocol.ParseFWVersion(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}

func cloneRollout(r *loa.Rollout) *loa.Rollout {
	c := *r
	c.Waves = slices.Clone(r.Waves)
	c.Targets.Areas = slices.Clone(r.Targets.Areas)
	c.Targets.Devices = slices.Clone(r.Targets.Devices)
	c.Devices = slices.Clone(r.Devices)
	return &c
}
