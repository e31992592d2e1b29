package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// memRollouts is an in-memory RolloutStore that round-trips through JSON,
// as bbolt does, so the engine cannot share memory with what it stored.
type memRollouts struct {
	mu   sync.Mutex
	data map[string][]byte
	puts int
}

func (m *memRollouts) PutRollout(ctx context.Context, r *loa.Rollout) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	m.data[r.ID] = b
	m.puts++
	return nil
}

func (m *memRollouts) Rollout(ctx context.Context, id string) (*loa.Rollout, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "rollout %q not found", id)
	}
	r := new(loa.Rollout)
	return r, json.Unmarshal(b, r)
}

func (m *memRollouts) Rollouts(ctx context.Context) ([]*loa.Rollout, error) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.data))
	for id := range m.data {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	var out []*loa.Rollout
	for _, id := range ids {
		r, err := m.Rollout(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// fakeFleet answers firmware commands with a per-device behaviour and
// reports presence.
type fakeFleet struct {
	mu      sync.Mutex
	online  map[string]bool
	version map[string]string
	sent    []string
	answer  func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error)
}

func (f *fakeFleet) SendFirmware(ctx context.Context, id string, args protocol.FirmwareArgs, progress func(protocol.Ack)) (protocol.Ack, error) {
	f.mu.Lock()
	f.sent = append(f.sent, id)
	answer := f.answer
	f.mu.Unlock()
	return answer(ctx, id, progress)
}

func (f *fakeFleet) DeviceState(id string) (loa.DeviceState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := loa.DeviceState{ID: id, Online: f.online[id]}
	if v := f.version[id]; v != "" {
		st.Telemetry = &loa.Telemetry{Firmware: v}
	}
	return st, true
}

func (f *fakeFleet) sentTo() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func newFakeFleet(ids []string) *fakeFleet {
	f := &fakeFleet{online: map[string]bool{}, version: map[string]string{}}
	for _, id := range ids {
		f.online[id] = true
		f.version[id] = "1.0.0"
	}
	return f
}

func done(version string) protocol.Ack {
	res, _ := json.Marshal(protocol.FirmwareResult{Version: version, Slot: "b"})
	return protocol.Ack{ID: "c", State: protocol.AckDone, Result: res}
}

func failed(code, msg string) (protocol.Ack, error) {
	return protocol.Ack{ID: "c", State: protocol.AckFailed, Code: code, Msg: msg},
		loa.Errorf(loa.EUNAVAILABLE, "firmware failed: %s", msg)
}

var testArgs = protocol.FirmwareArgs{Version: "1.1.0", URL: "http://ctl/fw/x", Size: 10, SHA256: strings.Repeat("a", 64), Sig: "sig"}

func newTestEngine(t *testing.T, st RolloutStore, fl *fakeFleet) *RolloutEngine {
	t.Helper()
	e := NewRolloutEngine(RolloutConfig{
		Store: st, Sender: fl, Presence: fl, Concurrency: 4, Poll: 5 * time.Millisecond,
		Args: func(ctx context.Context, id string) (protocol.FirmwareArgs, error) {
			if id != "img" {
				return protocol.FirmwareArgs{}, loa.Errorf(loa.ENOTFOUND, "no image %q", id)
			}
			return testArgs, nil
		},
	})
	t.Cleanup(func() { e.Close() })
	return e
}

func deviceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("rx-%03d", i)
	}
	return ids
}

// waitRollout polls until cond holds for the rollout.
func waitRollout(t *testing.T, e *RolloutEngine, id string, what string, cond func(r *loa.Rollout) bool) *loa.Rollout {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout never %s: state %s wave %d reason %q devices %+v", what, r.State, r.Wave, r.Reason, r.Devices)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newRollout(waves ...int) *loa.Rollout {
	r := &loa.Rollout{ImageID: "img", Targets: loa.Targets{Areas: []string{"p"}}, Waves: waves, WaveTimeout: time.Minute}
	r.Normalize()
	return r
}

func TestPlanWaves(t *testing.T) {
	ids := deviceIDs(20)
	plan := PlanWaves(ids, []int{10, 50, 100})
	sizes := map[int]int{}
	for _, d := range plan {
		sizes[d.Wave]++
		if d.State != loa.RolloutDevicePending {
			t.Errorf("%s planned as %s", d.Device, d.State)
		}
	}
	if sizes[0] != 2 || sizes[1] != 8 || sizes[2] != 10 {
		t.Errorf("wave sizes %v, want 2, 8, 10", sizes)
	}
	// The order depends on the ids only, not the order they came in.
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if again := PlanWaves(append(rev, ids[3]), []int{10, 50, 100}); !slices.Equal(again, plan) {
		t.Errorf("planning reversed ids (and a duplicate) gave another plan:\n%v\n%v", again, plan)
	}
	// Hashing spreads a wave: the first wave is not simply the lowest ids.
	if sorted := slices.IsSortedFunc(plan, func(a, b loa.RolloutDevice) int { return strings.Compare(a.Device, b.Device) }); sorted {
		t.Error("plan is in id order; want hash order")
	}
	// Small fleets: every wave with a share gets at least one device.
	small := PlanWaves(deviceIDs(3), loa.DefaultWaves)
	got := []int{small[0].Wave, small[1].Wave, small[2].Wave}
	if !slices.Equal(got, []int{0, 2, 3}) {
		t.Errorf("3 devices in waves 1/10/50/100 went to waves %v, want [0 2 3]", got)
	}
}

// A wave whose failures exceed the threshold pauses the rollout before
// the next wave is sent; resuming accepts them and finishes.
func TestRolloutPausesOnFailures(t *testing.T) {
	ids := deviceIDs(20)
	plan := PlanWaves(ids, []int{10, 50, 100})
	bad := map[string]bool{}
	for _, d := range plan {
		if d.Wave == 1 && len(bad) < 3 {
			bad[d.Device] = true
		}
	}
	fl := newFakeFleet(ids)
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		if bad[id] {
			return failed(protocol.FWRolledBack, "new image did not come up")
		}
		return done("1.1.0"), nil
	}
	st := &memRollouts{}
	e := newTestEngine(t, st, fl)
	r := newRollout(10, 50, 100)
	r.FailThreshold = 0.2
	if err := e.Start(context.Background(), r, ids); err != nil {
		t.Fatal(err)
	}
	got := waitRollout(t, e, r.ID, "paused", func(r *loa.Rollout) bool { return r.State == loa.RolloutPaused })
	// 20% of 8 is 1.6: the second failure pauses it, even mid-wave (the
	// third may finish in the same moment, sent before the pause).
	if !regexp.MustCompile(`^wave 2 \(50%\): [23] of 8 devices failed, over the threshold of 20%$`).MatchString(got.Reason) || got.Wave != 1 || !got.AutoPaused {
		t.Errorf("paused in wave %d (auto %v) with reason %q; want wave index 1 and 2 or 3 of 8 failed", got.Wave, got.AutoPaused, got.Reason)
	}
	// Wave 3 was never sent.
	for _, id := range fl.sentTo() {
		for _, d := range got.Devices {
			if d.Device == id && d.Wave == 2 {
				t.Errorf("%s of wave 3 was sent the image while wave 2 failed", id)
			}
		}
	}
	// The pause stopped new sends at once: the wave's devices not yet
	// sent stay pending, and the store has the same as memory.
	got = waitRollout(t, e, r.ID, "quiet", func(r *loa.Rollout) bool {
		for _, d := range r.Devices {
			if !loa.RolloutDeviceFinal(d.State) && d.State != loa.RolloutDevicePending {
				return false
			}
		}
		return true
	})
	if n := waveCount(got, loa.RolloutDevicePending); n == 0 {
		t.Errorf("every device of wave 2 was sent after it crossed the threshold")
	}
	waitStored(t, st, r.ID, func(s *loa.Rollout) bool { return s.State == loa.RolloutPaused && s.Reason == got.Reason })

	if _, err := e.Resume(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	end := waitRollout(t, e, r.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	totals := end.Totals()
	if totals[2].States[loa.RolloutDeviceDone] != 10 || totals[1].States[loa.RolloutDeviceFailed] != 3 {
		t.Errorf("totals %+v; want wave 3 all done and wave 2 with 3 failed", totals)
	}
	for _, d := range end.Devices {
		if bad[d.Device] && (d.State != loa.RolloutDeviceFailed || d.Code != protocol.FWRolledBack) {
			t.Errorf("%s: %s %s, want failed rolled_back", d.Device, d.State, d.Code)
		}
		if !bad[d.Device] && (d.State != loa.RolloutDeviceDone || d.Version != "1.1.0") {
			t.Errorf("%s: %s version %q, want done 1.1.0", d.Device, d.State, d.Version)
		}
	}
	if _, err := e.Resume(context.Background(), r.ID); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("resuming a completed rollout: %v, want conflict", err)
	}
	waitStored(t, st, r.ID, func(s *loa.Rollout) bool { return s.State == loa.RolloutCompleted && !s.EndedAt.IsZero() })
}

func waitStored(t *testing.T, st *memRollouts, id string, cond func(*loa.Rollout) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := st.Rollout(context.Background(), id)
		if err == nil && cond(r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored rollout never matched: %+v (%v)", r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Devices at or above the version are skipped without a command, devices
// offline for the whole wave are offline, and neither counts as failed.
func TestRolloutSkipsCurrentAndOffline(t *testing.T) {
	ids := deviceIDs(6)
	fl := newFakeFleet(ids)
	fl.version[ids[0]] = "1.1.0"
	fl.version[ids[1]] = "2.0"
	fl.online[ids[2]] = false
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		if id == ids[3] { // no telemetry yet; the receiver refuses the downgrade itself
			a, err := failed(protocol.FWDowngrade, "1.1.0 is not newer than 1.1.0")
			return a, err
		}
		return done("1.1.0"), nil
	}
	fl.version[ids[3]] = ""
	e := newTestEngine(t, &memRollouts{}, fl)
	r := newRollout(100)
	r.FailThreshold = 0.01
	r.WaveTimeout = time.Second
	if err := e.Start(context.Background(), r, ids); err != nil {
		t.Fatal(err)
	}
	end := waitRollout(t, e, r.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	want := map[string]string{ids[0]: loa.RolloutDeviceSkipped, ids[1]: loa.RolloutDeviceSkipped,
		ids[2]: loa.RolloutDeviceOffline, ids[3]: loa.RolloutDeviceSkipped, ids[4]: loa.RolloutDeviceDone, ids[5]: loa.RolloutDeviceDone}
	for _, d := range end.Devices {
		if d.State != want[d.Device] {
			t.Errorf("%s: %s (%s %s), want %s", d.Device, d.State, d.Code, d.Msg, want[d.Device])
		}
	}
	for _, id := range fl.sentTo() {
		if id == ids[0] || id == ids[1] || id == ids[2] {
			t.Errorf("%s was sent the image", id)
		}
	}
}

// Progress acks move a device through downloading, installing and
// rebooting; pause stops new sends, abort ends the rollout and the
// devices never sent stay pending.
func TestRolloutProgressPauseAbort(t *testing.T) {
	ids := deviceIDs(8)
	fl := newFakeFleet(ids)
	release := make(chan struct{})
	phase, next := make(chan string), make(chan struct{})
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		for _, p := range []string{protocol.FWPhaseDownloading, protocol.FWPhaseInstalling, protocol.FWPhaseRebooting} {
			res, _ := json.Marshal(protocol.FirmwareProgress{Phase: p, Bytes: 5, Total: 10})
			progress(protocol.Ack{ID: "c", State: protocol.AckProgress, Result: res})
			select {
			case phase <- id + " " + p:
				<-next
			case <-ctx.Done():
			}
		}
		select {
		case <-release:
			return done("1.1.0"), nil
		case <-ctx.Done():
			return protocol.Ack{ID: "c"}, loa.Errorf(loa.ETIMEOUT, "no answer")
		}
	}
	e := newTestEngine(t, &memRollouts{}, fl)
	e.cfg.Concurrency = 2
	r := newRollout(100)
	if err := e.Start(context.Background(), r, ids); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 6 { // two devices in flight, three phases each
		p := <-phase
		seen[p] = true
		id, ph, _ := strings.Cut(p, " ")
		want := map[string]string{protocol.FWPhaseDownloading: loa.RolloutDeviceDownloading,
			protocol.FWPhaseInstalling: loa.RolloutDeviceInstalling, protocol.FWPhaseRebooting: loa.RolloutDeviceRebooting}[ph]
		got, _ := e.Get(context.Background(), r.ID)
		for _, d := range got.Devices {
			if d.Device == id && d.State != want {
				t.Errorf("%s after %s progress: %s, want %s", id, ph, d.State, want)
			}
		}
		next <- struct{}{}
	}
	if _, err := e.Pause(context.Background(), r.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pause(context.Background(), r.ID, ""); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("pausing twice: %v, want conflict", err)
	}
	close(release) // the two in flight finish; nothing more is sent while paused
	got := waitRollout(t, e, r.ID, "two done", func(r *loa.Rollout) bool { return waveCount(r, loa.RolloutDeviceDone) == 2 })
	if got.State != loa.RolloutPaused || got.Reason != "paused by an operator" {
		t.Errorf("state %s reason %q, want paused by an operator", got.State, got.Reason)
	}
	if n := len(fl.sentTo()); n != 2 {
		t.Errorf("%d devices were sent the image; want the 2 in flight at the pause", n)
	}
	ab, err := e.Abort(context.Background(), r.ID, "bad batch")
	if err != nil || ab.State != loa.RolloutAborted || ab.Reason != "bad batch" {
		t.Fatalf("abort: %+v, %v", ab, err)
	}
	if _, err := e.Resume(context.Background(), r.ID); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("resuming an aborted rollout: %v, want conflict", err)
	}
	end, _ := e.Get(context.Background(), r.ID)
	if n := waveCount(end, loa.RolloutDevicePending); n != 6 {
		t.Errorf("%d devices pending after abort, want 6", n)
	}
	if n := len(fl.sentTo()); n != 2 {
		t.Errorf("%d devices were sent the image after abort, want 2", n)
	}
}

// A controller restart mid-rollout: the new engine continues the stored
// rollout, asks again a device that was busy with the first command and
// counts one that came up on the new version as done.
func TestRolloutContinuesAfterRestart(t *testing.T) {
	ids := deviceIDs(4)
	st := &memRollouts{}
	fl := newFakeFleet(ids)
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		<-ctx.Done() // the controller stops while every device is in flight
		return protocol.Ack{ID: "c"}, loa.Errorf(loa.ETIMEOUT, "no answer: %v", ctx.Err())
	}
	e1 := newTestEngine(t, st, fl)
	r := newRollout(100)
	if err := e1.Start(context.Background(), r, ids); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, e1, r.ID, "all sent", func(r *loa.Rollout) bool { return waveCount(r, loa.RolloutDeviceSent) == 4 })
	waitStored(t, st, r.ID, func(s *loa.Rollout) bool { return waveCount(s, loa.RolloutDeviceSent) == 4 })
	e1.Close()
	if s, _ := st.Rollout(context.Background(), r.ID); s.State != loa.RolloutRunning || waveCount(s, loa.RolloutDeviceSent) != 4 {
		t.Fatalf("after close the store has %s with devices %+v; want running, all sent", s.State, s.Devices)
	}

	// Meanwhile rx-000 came up on 1.1.0; rx-001 is still busy once.
	fl2 := newFakeFleet(ids)
	fl2.version[ids[0]] = "1.1.0"
	var busyOnce sync.Once
	fl2.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		busy := false
		if id == ids[1] {
			busyOnce.Do(func() { busy = true })
		}
		if busy {
			return failed(protocol.FWBusy, "firmware update in progress")
		}
		return done("1.1.0"), nil
	}
	e2 := newTestEngine(t, st, fl2)
	if err := e2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := waitRollout(t, e2, r.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	for _, d := range end.Devices {
		if d.State != loa.RolloutDeviceDone || d.Version != "1.1.0" {
			t.Errorf("%s: %s %s %q, want done on 1.1.0", d.Device, d.State, d.Code, d.Version)
		}
	}
	if slices.Contains(fl2.sentTo(), ids[0]) {
		t.Errorf("%s runs the version already but was sent it again", ids[0])
	}
	if n := strings.Count(strings.Join(fl2.sentTo(), " "), ids[1]); n != 2 {
		t.Errorf("busy %s was asked %d times, want 2", ids[1], n)
	}
}

func TestRolloutStartRefuses(t *testing.T) {
	fl := newFakeFleet(deviceIDs(2))
	st := &memRollouts{}
	e := newTestEngine(t, st, fl)
	r := newRollout(100)
	if err := e.Start(context.Background(), r, nil); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("no devices: %v, want invalid", err)
	}
	r.ImageID = "gone"
	if err := e.Start(context.Background(), r, deviceIDs(2)); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown image: %v, want not_found", err)
	}
	if st.puts != 0 {
		t.Errorf("refused starts stored %d rollouts", st.puts)
	}
	// A device already in a live rollout cannot be in a second one.
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		<-ctx.Done()
		return protocol.Ack{ID: "c"}, loa.Errorf(loa.ETIMEOUT, "no answer")
	}
	first := newRollout(100)
	if err := e.Start(context.Background(), first, deviceIDs(2)); err != nil {
		t.Fatal(err)
	}
	second := newRollout(100)
	if err := e.Start(context.Background(), second, deviceIDs(2)[1:]); loa.ErrorCode(err) != loa.ECONFLICT || strings.Contains(err.Error(), first.ID) {
		t.Errorf("overlapping rollout: %v, want a conflict not naming %s (it may be of another scope)", err, first.ID)
	}
	if _, err := e.Abort(context.Background(), first.ID, ""); err != nil {
		t.Fatal(err)
	}
	// An aborted rollout no longer holds its devices.
	if err := e.Start(context.Background(), second, deviceIDs(2)[1:]); err != nil {
		t.Errorf("rollout after the abort: %v", err)
	}
}

// Device progress is stored at most every SaveEvery; changes of the
// rollout itself (a wave done, the end) are stored at once, and what is
// stored last is the final state.
func TestRolloutCoalescesProgressWrites(t *testing.T) {
	ids := deviceIDs(40)
	fl := newFakeFleet(ids)
	fl.answer = func(ctx context.Context, id string, progress func(protocol.Ack)) (protocol.Ack, error) {
		for _, p := range []string{protocol.FWPhaseDownloading, protocol.FWPhaseInstalling, protocol.FWPhaseRebooting} {
			res, _ := json.Marshal(protocol.FirmwareProgress{Phase: p})
			progress(protocol.Ack{ID: "c", State: protocol.AckProgress, Result: res})
		}
		return done("1.1.0"), nil
	}
	st := &memRollouts{}
	e := newTestEngine(t, st, fl)
	e.cfg.SaveEvery = time.Hour
	e.cfg.Concurrency = 40
	r := newRollout(10, 50, 100)
	if err := e.Start(context.Background(), r, ids); err != nil {
		t.Fatal(err)
	}
	waitStored(t, st, r.ID, func(s *loa.Rollout) bool { return s.State == loa.RolloutCompleted })
	s, _ := st.Rollout(context.Background(), r.ID)
	for _, d := range s.Devices {
		if d.State != loa.RolloutDeviceDone {
			t.Errorf("stored %s as %s", d.Device, d.State)
		}
	}
	// 40 devices × 5 changes each, but only: the start, three waves done
	// (the last one with the end) and at most one deferred write.
	st.mu.Lock()
	puts := st.puts
	st.mu.Unlock()
	if puts > 6 {
		t.Errorf("%d writes for one rollout of 40 devices; device progress was not coalesced", puts)
	}
}
