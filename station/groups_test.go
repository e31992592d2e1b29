package station

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// fakeGroupFleet prepares group runs whose acks the test delivers.
type fakeGroupFleet struct {
	online map[string]bool
	err    error // PrepareGroup's answer when set

	mu       sync.Mutex
	prepared [][]string // the ids of every PrepareGroup
	runs     []*fakeGroupRun
}

func (f *fakeGroupFleet) PrepareGroup(op string, args json.RawMessage, ids []string, timeout time.Duration) (GroupRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepared = append(f.prepared, slices.Clone(ids))
	if f.err != nil {
		return nil, f.err
	}
	r := &fakeGroupRun{acks: make(chan loa.GroupResult)}
	for _, id := range ids {
		res := loa.GroupResult{Device: id, State: loa.GroupPending, Command: "cmd-" + id}
		if !f.online[id] {
			res = loa.GroupResult{Device: id, State: loa.GroupOffline, Code: loa.EUNAVAILABLE}
		}
		r.results = append(r.results, res)
	}
	f.runs = append(f.runs, r)
	return r, nil
}

func (f *fakeGroupFleet) run(i int) *fakeGroupRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[i]
}

// fakeGroupRun settles a device per value sent on acks; when its context
// ends, the pending devices time out with the cause, as devices.GroupRun.
type fakeGroupRun struct {
	acks chan loa.GroupResult

	mu      sync.Mutex
	results []loa.GroupResult
	ran     bool
}

func (r *fakeGroupRun) Results() []loa.GroupResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.results)
}

func (r *fakeGroupRun) pending() int {
	n := 0
	for _, res := range r.results {
		if !res.Final() {
			n++
		}
	}
	return n
}

func (r *fakeGroupRun) Run(ctx context.Context) []loa.GroupResult {
	r.mu.Lock()
	r.ran = true
	r.mu.Unlock()
	for {
		r.mu.Lock()
		if r.pending() == 0 {
			defer r.mu.Unlock()
			return slices.Clone(r.results)
		}
		r.mu.Unlock()
		select {
		case a := <-r.acks:
			r.mu.Lock()
			for i := range r.results {
				if r.results[i].Device == a.Device {
					a.Command, a.AckedAt = r.results[i].Command, time.Now()
					r.results[i] = a
				}
			}
			r.mu.Unlock()
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			for i := range r.results {
				if !r.results[i].Final() {
					r.results[i].State, r.results[i].Code, r.results[i].Msg = loa.GroupTimeout, loa.ETIMEOUT, context.Cause(ctx).Error()
				}
			}
			return slices.Clone(r.results)
		}
	}
}

// groupStore is tempStore with a cluster "k" under commune "c" and a
// second commune "c2": devices a1, a3 in c, a2 in k, b1 in c2.
func groupStore(t *testing.T) *store.DB {
	t.Helper()
	db := tempStore(t, "a1", "a3")
	ctx := context.Background()
	for _, a := range []*loa.Area{
		{ID: "k", ParentID: "c", Name: "K", Kind: loa.AreaCluster},
		{ID: "c2", ParentID: "p", Name: "C2", Kind: loa.AreaCommune},
	} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for id, area := range map[string]string{"a2": "k", "b1": "c2"} {
		if _, err := db.CreateDevice(ctx, &loa.Device{ID: id, AreaID: area, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func openGroups(t *testing.T, db *store.DB, fleet GroupPreparer) *GroupService {
	t.Helper()
	s, err := OpenGroupService(context.Background(), GroupConfig{DB: db, Fleet: fleet, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func resultStates(g *loa.GroupCommand) map[string]string {
	m := map[string]string{}
	for _, r := range g.Results {
		m[r.Device] = r.State
	}
	return m
}

// A group command to a commune reaches its subtree's devices, is stored
// running at once, answers live while acks come, and is stored settled
// with the time of the last ack.
func TestGroupCommandRunsAndSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := groupStore(t)
		fleet := &fakeGroupFleet{online: map[string]bool{"a1": true, "a2": true, "b1": true}}
		s := openGroups(t, db, fleet)
		defer s.Close()

		start := time.Now()
		g := &loa.GroupCommand{AreaID: "c", Op: "volume", Args: json.RawMessage(`{"level":35}`), TimeoutMs: 20000}
		if err := s.StartGroupCommand(ctx, g); err != nil {
			t.Fatal(err)
		}
		if got := fleet.prepared[0]; !slices.Equal(got, []string{"a1", "a2", "a3"}) {
			t.Errorf("prepared for %v, want the commune's subtree a1 a2 a3", got)
		}
		want := loa.GroupTotals{Pending: 2, Offline: 1}
		if g.ID == "" || g.State != loa.GroupRunning || !g.CreatedAt.Equal(start) || g.Totals != want {
			t.Fatalf("started %+v, want running since %v with %+v", g, start, want)
		}
		stored, err := db.GroupCommand(ctx, g.ID)
		if err != nil || stored.State != loa.GroupRunning || stored.Totals != want {
			t.Fatalf("stored at start: %+v %v, want running with %+v", stored, err, want)
		}

		run := fleet.run(0)
		run.acks <- loa.GroupResult{Device: "a1", State: loa.GroupDoneAck}
		synctest.Wait()
		live, err := s.GroupCommand(ctx, g.ID)
		if err != nil || live.State != loa.GroupRunning || resultStates(live)["a1"] != loa.GroupDoneAck || live.Totals.Pending != 1 {
			t.Errorf("live: %+v %v, want a1 done, one pending", live, err)
		}

		time.Sleep(5 * time.Second) // on the bubble's clock
		run.acks <- loa.GroupResult{Device: "a2", State: loa.GroupFailed, Code: loa.EINTERNAL, Msg: "amp off"}
		done, err := s.WaitGroupCommand(ctx, g.ID)
		want = loa.GroupTotals{Done: 1, Failed: 1, Offline: 1}
		if err != nil || done.State != loa.GroupDone || done.Totals != want || !done.SettledAt.Equal(start.Add(5*time.Second)) {
			t.Fatalf("settled: %+v %v, want done with %+v at start+5s", done, err, want)
		}
		stored, err = db.GroupCommand(ctx, g.ID)
		if err != nil || stored.State != loa.GroupDone || stored.Totals != want || len(stored.Results) != 3 || string(stored.Args) != `{"level":35}` {
			t.Errorf("stored settled: %+v %v", stored, err)
		}
	})
}

// Close abandons a running command: its pending devices time out with
// the reason, and the record is settled before Close returns. The next
// start has nothing left to settle.
func TestGroupCommandCloseSettlesRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := groupStore(t)
		fleet := &fakeGroupFleet{online: map[string]bool{"a1": true, "a2": true, "a3": true}}
		s := openGroups(t, db, fleet)
		g := &loa.GroupCommand{AreaID: "c", Op: "test"}
		if err := s.StartGroupCommand(ctx, g); err != nil {
			t.Fatal(err)
		}
		if g.TimeoutMs != loa.GroupDefaultTimeout.Milliseconds() {
			t.Errorf("timeout %d ms, want the default", g.TimeoutMs)
		}
		fleet.run(0).acks <- loa.GroupResult{Device: "a2", State: loa.GroupDoneAck}
		s.Close()

		stored, err := db.GroupCommand(ctx, g.ID)
		if err != nil || stored.State != loa.GroupDone || stored.Totals != (loa.GroupTotals{Done: 1, Timeout: 2}) {
			t.Fatalf("stored after Close: %+v %v, want done: 1 done, 2 timeout", stored, err)
		}
		for _, r := range stored.Results {
			if r.State == loa.GroupTimeout && r.Msg != errGroupStopping.Error() {
				t.Errorf("%s timed out with %q, want %q", r.Device, r.Msg, errGroupStopping)
			}
		}

		time.Sleep(time.Minute)
		s2 := openGroups(t, db, fleet)
		defer s2.Close()
		again, err := s2.GroupCommand(ctx, g.ID)
		if err != nil || !again.SettledAt.Equal(stored.SettledAt) {
			t.Errorf("after a restart: %+v %v, want the record Close wrote", again, err)
		}
	})
}

// A record a crash left running is settled by the next start: its pending
// devices time out, its final ones keep their results.
func TestGroupCommandInterruptedSettledOnOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := groupStore(t)
		crashed := &loa.GroupCommand{ID: "g1", AreaID: "c", Op: "volume", State: loa.GroupRunning, CreatedAt: time.Now().UTC(),
			Results: []loa.GroupResult{{Device: "a1", State: loa.GroupDoneAck}, {Device: "a2", State: loa.GroupPending}}}
		crashed.Count()
		if err := db.PutGroupCommand(ctx, crashed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		s := openGroups(t, db, &fakeGroupFleet{})
		defer s.Close()
		g, err := s.GroupCommand(ctx, "g1")
		if err != nil || g.State != loa.GroupDone || !g.SettledAt.Equal(time.Now()) ||
			g.Totals != (loa.GroupTotals{Done: 1, Timeout: 1}) || g.Results[1].Msg != errGroupStopping.Error() {
			t.Errorf("after the restart: %+v %v, want settled now, a2 timed out", g, err)
		}
	})
}

// With every device offline the command is done when created, and the
// fleet is never asked to run it.
func TestGroupCommandAllOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fleet := &fakeGroupFleet{}
		s := openGroups(t, groupStore(t), fleet)
		defer s.Close()
		g := &loa.GroupCommand{AreaID: "c2", Op: "reboot"}
		if err := s.StartGroupCommand(ctx, g); err != nil {
			t.Fatal(err)
		}
		if g.State != loa.GroupDone || !g.SettledAt.Equal(g.CreatedAt) || g.Totals != (loa.GroupTotals{Offline: 1}) {
			t.Errorf("started %+v, want done at once with b1 offline", g)
		}
		w, err := s.WaitGroupCommand(ctx, g.ID)
		if err != nil || w.State != loa.GroupDone {
			t.Errorf("wait: %+v %v", w, err)
		}
		if fleet.run(0).ran {
			t.Error("a command with no device online was run")
		}
	})
}

// WaitGroupCommand returns the command as it is when its context ends.
func TestGroupCommandWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeGroupFleet{online: map[string]bool{"b1": true}}
		s := openGroups(t, groupStore(t), fleet)
		defer s.Close()
		g := &loa.GroupCommand{AreaID: "c2", Op: "volume"}
		if err := s.StartGroupCommand(context.Background(), g); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w, err := s.WaitGroupCommand(ctx, g.ID)
		if err != nil || w.State != loa.GroupRunning || !time.Now().Equal(g.CreatedAt.Add(time.Second)) {
			t.Errorf("wait: %+v %v at %v, want running after 1s", w, err, time.Now())
		}
	})
}

// Bad areas and refused commands leave nothing stored.
func TestGroupCommandRefused(t *testing.T) {
	ctx := context.Background()
	db := groupStore(t)
	fleet := &fakeGroupFleet{}
	s := openGroups(t, db, fleet)
	defer s.Close()
	for area, code := range map[string]string{"": loa.EINVALID, "no such": loa.EINVALID, "ghost": loa.ENOTFOUND} {
		if err := s.StartGroupCommand(ctx, &loa.GroupCommand{AreaID: area, Op: "volume"}); loa.ErrorCode(err) != code {
			t.Errorf("area %q: %v, want %s", area, err, code)
		}
	}
	fleet.err = loa.Errorf(loa.EINVALID, "op: unknown command")
	g := &loa.GroupCommand{AreaID: "c", Op: "dance"}
	if err := s.StartGroupCommand(ctx, g); err != fleet.err {
		t.Errorf("refused by the fleet: %v, want its error", err)
	}
	if g.ID != "" {
		t.Errorf("a refused command got id %q", g.ID)
	}
	if _, err := s.GroupCommand(ctx, "anything"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown group command: %v, want ENOTFOUND", err)
	}
}
