package station

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"

	"github.com/loa-broadcast/loa"
)

// fakeRolloutEngine keeps rollouts in memory and changes their state as
// devices.RolloutEngine would, without sending anything.
type fakeRolloutEngine struct {
	rollouts map[string]*loa.Rollout
	started  [][]string // the devices of every Start
}

func (e *fakeRolloutEngine) Start(ctx context.Context, r *loa.Rollout, devices []string) error {
	e.started = append(e.started, devices)
	r.ID, r.State = fmt.Sprintf("r%d", len(e.started)), loa.RolloutRunning
	for _, d := range devices {
		r.Devices = append(r.Devices, loa.RolloutDevice{Device: d, State: loa.RolloutDevicePending})
	}
	c := *r
	e.rollouts[r.ID] = &c
	return nil
}

func (e *fakeRolloutEngine) change(id, state, reason string, from ...string) (*loa.Rollout, error) {
	r, ok := e.rollouts[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "rollout %q not found", id)
	}
	if !slices.Contains(from, r.State) {
		return nil, loa.Errorf(loa.ECONFLICT, "rollout %s is %s", id, r.State)
	}
	r.State, r.Reason = state, reason
	c := *r
	return &c, nil
}

func (e *fakeRolloutEngine) Pause(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return e.change(id, loa.RolloutPaused, reason, loa.RolloutRunning)
}

func (e *fakeRolloutEngine) Resume(ctx context.Context, id string) (*loa.Rollout, error) {
	return e.change(id, loa.RolloutRunning, "", loa.RolloutPaused)
}

func (e *fakeRolloutEngine) Abort(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return e.change(id, loa.RolloutAborted, reason, loa.RolloutRunning, loa.RolloutPaused)
}

func (e *fakeRolloutEngine) Get(ctx context.Context, id string) (*loa.Rollout, error) {
	r, ok := e.rollouts[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "rollout %q not found", id)
	}
	c := *r
	return &c, nil
}

func (e *fakeRolloutEngine) List(ctx context.Context) ([]*loa.Rollout, error) {
	var list []*loa.Rollout
	for _, r := range e.rollouts {
		c := *r
		list = append(list, &c)
	}
	return list, nil
}

// rolloutFixture is a firmware service with one uploaded image over a
// fake engine; its resolver knows areas "c" (rx-1, rx-2) and devices.
type rolloutFixture struct {
	fw       *FirmwareService
	engine   *fakeRolloutEngine
	image    *loa.FirmwareImage
	resolved []loa.Targets
}

func newRolloutFixture(t *testing.T) *rolloutFixture {
	t.Helper()
	f := &rolloutFixture{engine: &fakeRolloutEngine{rollouts: map[string]*loa.Rollout{}}}
	pub, priv, _ := ed25519.GenerateKey(nil)
	resolve := func(ctx context.Context, tg loa.Targets) ([]string, error) {
		f.resolved = append(f.resolved, tg)
		var ids []string
		for _, a := range tg.Areas {
			if a != "c" {
				return nil, loa.Errorf(loa.ENOTFOUND, "targets.areas: no area %q", a)
			}
			ids = append(ids, "rx-1", "rx-2")
		}
		ids = append(ids, tg.Devices...)
		slices.Sort(ids)
		return slices.Compact(ids), nil
	}
	f.fw = newFirmware(t, tempStore(t), pub, FirmwareConfig{Rollouts: f.engine, Resolve: resolve})
	r, sig := signed(t, priv, "1.1.0", "image")
	var err error
	if f.image, err = f.fw.UploadFirmware(context.Background(), "1.1.0", sig, "", r, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *rolloutFixture) request(targets loa.Targets) *loa.Rollout {
	r := &loa.Rollout{ImageID: f.image.ID, Targets: targets}
	r.Normalize()
	return r
}

// A rollout reaches the engine with its targets resolved, and pause,
// resume and abort change its course there.
func TestRolloutStartPauseResume(t *testing.T) {
	ctx := context.Background()
	f := newRolloutFixture(t)
	r := f.request(loa.Targets{Areas: []string{"c"}, Devices: []string{"rx-3", "rx-1"}})
	if err := f.fw.StartRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	if len(f.engine.started) != 1 || !slices.Equal(f.engine.started[0], []string{"rx-1", "rx-2", "rx-3"}) {
		t.Fatalf("engine started with %v, want rx-1 rx-2 rx-3", f.engine.started)
	}
	if r.ID == "" || r.State != loa.RolloutRunning {
		t.Errorf("started %+v", r)
	}

	p, err := f.fw.PauseRollout(ctx, r.ID, "checking the first wave")
	if err != nil || p.State != loa.RolloutPaused || p.Reason != "checking the first wave" {
		t.Errorf("pause: %+v %v", p, err)
	}
	if got, err := f.fw.Rollout(ctx, r.ID); err != nil || got.State != loa.RolloutPaused {
		t.Errorf("after pause: %+v %v", got, err)
	}
	if _, err := f.fw.PauseRollout(ctx, r.ID, "again"); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("pausing a paused rollout: %v, want the engine's ECONFLICT", err)
	}
	res, err := f.fw.ResumeRollout(ctx, r.ID)
	if err != nil || res.State != loa.RolloutRunning {
		t.Errorf("resume: %+v %v", res, err)
	}
	a, err := f.fw.AbortRollout(ctx, r.ID, "wrong image")
	if err != nil || a.State != loa.RolloutAborted || a.Reason != "wrong image" {
		t.Errorf("abort: %+v %v", a, err)
	}
	if list, err := f.fw.Rollouts(ctx); err != nil || len(list) != 1 || list[0].State != loa.RolloutAborted {
		t.Errorf("rollouts %v %v", list, err)
	}
	if _, err := f.fw.ResumeRollout(ctx, "ghost"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("resume unknown: %v, want ENOTFOUND", err)
	}
}

// A rollout that is invalid, names an unknown image or unknown targets
// never reaches the engine.
func TestRolloutRefusedBeforeTheEngine(t *testing.T) {
	ctx := context.Background()
	f := newRolloutFixture(t)

	noTargets := f.request(loa.Targets{})
	if err := f.fw.StartRollout(ctx, noTargets); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("no targets: %v, want EINVALID", err)
	}
	if len(f.resolved) != 0 {
		t.Errorf("an invalid rollout was resolved: %v", f.resolved)
	}

	ghostImage := f.request(loa.Targets{Devices: []string{"rx-1"}})
	ghostImage.ImageID = "0123456789abcdef"
	if err := f.fw.StartRollout(ctx, ghostImage); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown image: %v, want ENOTFOUND", err)
	}

	ghostArea := f.request(loa.Targets{Areas: []string{"nowhere"}})
	if err := f.fw.StartRollout(ctx, ghostArea); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown area: %v, want ENOTFOUND", err)
	}
	if len(f.engine.started) != 0 {
		t.Errorf("the engine started %v", f.engine.started)
	}
}
