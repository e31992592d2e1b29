package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/store"
)

const wait = 20 * time.Second // generous: conditions, not timings, are asserted

// tnode is one in-process node: its store and Raft dirs in one data dir.
type tnode struct {
	id, dir string
	addr    string // once started: a restart binds it again, as members are known by address
	witness bool
	faults  *store.WriteFaults // set before start: the store's writes can be made to fail
	db      *store.DB
	n       *Node
}

// testLogger shows raft's log with LOA_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("LOA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start opens (or reopens) the node's store and Raft member. peers is set
// only for the node that bootstraps the cluster.
func (tn *tnode) start(t testing.TB, peers []Peer) {
	t.Helper()
	db, err := store.Open(filepath.Join(tn.dir, "loa.db"), store.Options{Faults: tn.faults})
	if err != nil {
		t.Fatal(err)
	}
	bind := tn.addr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	n, err := Open(context.Background(), Config{
		NodeID: tn.id, Bind: bind, Dir: filepath.Join(tn.dir, "raft"),
		Peers: peers, Witness: tn.witness, Witnesses: []string{"w"}, Logger: testLogger(),
		TrailingLogs: 2, // a follower a few entries behind a snapshot is sent it
	}, db)
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	tn.db, tn.n, tn.addr = db, n, n.Addr()
}

// stop closes the node as a killed process would leave it: no hand-over.
func (tn *tnode) stop(t testing.TB) {
	t.Helper()
	if tn.n == nil {
		return
	}
	if err := tn.n.Close(); err != nil {
		t.Errorf("close %s: %v", tn.id, err)
	}
	if err := tn.db.Close(); err != nil {
		t.Errorf("close %s store: %v", tn.id, err)
	}
	tn.n, tn.db = nil, nil
}

type tcluster struct {
	t     testing.TB
	nodes []*tnode
}

// newCluster starts c1 (bootstrapping), c2 and the witness w, and adds the
// last two from c1 (their addresses are known only once they listen).
func newCluster(t testing.TB) *tcluster {
	t.Helper()
	c := &tcluster{t: t}
	for _, id := range []string{"c1", "c2", "w"} {
		c.nodes = append(c.nodes, &tnode{id: id, dir: t.TempDir(), witness: id == "w"})
	}
	c.nodes[0].start(t, []Peer{{ID: "c1"}})
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			tn.stop(t)
		}
	})
	loatest.Eventually(t, wait, func() bool { return c.nodes[0].n.IsLeader() }, "c1 never led")
	for _, tn := range c.nodes[1:] {
		tn.start(t, nil)
		if err := c.nodes[0].n.AddVoter(context.Background(), tn.id, tn.n.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// leader waits for a node that leads and serves writes.
func (c *tcluster) leader(t testing.TB) *tnode {
	t.Helper()
	var l *tnode
	loatest.Eventually(t, wait, func() bool {
		for _, tn := range c.nodes {
			if tn.n != nil && tn.n.IsLeader() {
				l = tn
				return true
			}
		}
		return false
	}, "no leader")
	return l
}

func (c *tcluster) node(id string) *tnode {
	for _, tn := range c.nodes {
		if tn.id == id {
			return tn
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// dump returns every replicated record of db, one line each.
func dump(t testing.TB, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.EachRecord(context.Background(), func(b, k, v []byte) error {
		out = append(out, fmt.Sprintf("%s/%q=%q", b, k, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("record %d: %s ≠ %s", i, x, y)
		}
	}
	return ""
}

// converged waits until every running node holds the leader's records.
func (c *tcluster) converged(t testing.TB, l *tnode) {
	t.Helper()
	var last string
	deadline := time.Now().Add(wait)
	for !c.sameAs(t, l, &last) {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' stores never matched the leader's: %s", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *tcluster) sameAs(t testing.TB, l *tnode, last *string) bool {
	{
		want := dump(t, l.db)
		for _, tn := range c.nodes {
			if tn.n == nil || tn == l {
				continue
			}
			if d := diff(want, dump(t, tn.db)); d != "" {
				*last = tn.id + ": " + d
				return false
			}
		}
		return true
	}
}

// writeRecords makes the leader's store choose ids, secrets and sequences
// through its ordinary methods.
func (c *tcluster) writeRecords(t testing.TB, suffix string) {
	t.Helper()
	ops := []func(ctx context.Context, db *store.DB) error{
		func(ctx context.Context, db *store.DB) error {
			return db.CreateArea(ctx, &loa.Area{ID: "qn" + suffix, Name: "Quảng Nam", Kind: loa.AreaProvince})
		},
		func(ctx context.Context, db *store.DB) error {
			return db.CreateArea(ctx, &loa.Area{ID: "qn" + suffix + ".tk", ParentID: "qn" + suffix, Name: "Tam Kỳ", Kind: loa.AreaCommune})
		},
		func(ctx context.Context, db *store.DB) error {
			_, err := db.CreateDevice(ctx, &loa.Device{ID: "rx" + suffix, Name: "Loa chợ", AreaID: "qn" + suffix + ".tk"})
			return err
		},
		func(ctx context.Context, db *store.DB) error {
			_, err := db.CreateToken(ctx, &loa.Token{ID: "tok" + suffix, Name: "op" + suffix, Role: loa.RoleOperator, AreaID: "qn" + suffix})
			return err
		},
		func(ctx context.Context, db *store.DB) error {
			return db.PutMedia(ctx, &loa.Media{ID: "m" + suffix, Name: "Bản tin",
				Hash: fmt.Sprintf("%064x", suffix), Size: 1, Duration: time.Second, Frames: 50, Source: "opus"})
		},
		func(ctx context.Context, db *store.DB) error {
			return db.CreateSchedule(ctx, &loa.Schedule{
				ID: "s" + suffix, Name: "Bản tin sáng",
				Rule:    loa.Rule{Kind: loa.RuleWeekly, Date: "2027-01-04", Time: "06:00", Weekdays: []string{"mon"}, Zone: loa.DefaultZone},
				Content: loa.Content{MediaID: "m" + suffix}, Targets: loa.Targets{Areas: []string{"qn" + suffix + ".tk"}},
				Priority: 40, Overrun: loa.OverrunWait, MaxWait: time.Minute, Enabled: true,
			})
		},
		func(ctx context.Context, db *store.DB) error {
			return db.Audit(ctx, loa.AuditRecord{Action: "test.write", Object: "qn" + suffix})
		},
	}
	for _, op := range ops {
		c.onLeader(t, op)
	}
}

// onLeader runs op on the leader's store. A loaded machine may make the
// leader step down (its lease lapses): op is then run again on the next
// leader, and a conflict means the first attempt committed after all.
func (c *tcluster) onLeader(t testing.TB, op func(context.Context, *store.DB) error) {
	t.Helper()
	for retried := false; ; retried = true {
		err := op(context.Background(), c.leader(t).db)
		switch {
		case err == nil, retried && loa.ErrorCode(err) == loa.ECONFLICT:
			return
		case loa.ErrorCode(err) == loa.EUNAVAILABLE:
			t.Logf("retrying on the next leader: %v", err)
		default:
			t.Fatal(err)
		}
	}
}

func TestCluster(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	l := c.leader(t)
	if l.id != "c1" {
		t.Fatalf("leader %s, want c1 (the bootstrapper)", l.id)
	}
	if v := <-l.n.Leading(); !v {
		t.Fatal("the leader's Leading gave false")
	}

	t.Run("WritesReachEveryNode", func(t *testing.T) {
		c.writeRecords(t, "1")
		c.converged(t, l)
		for _, tn := range c.nodes {
			d, err := tn.db.Device(ctx, "rx1")
			if err != nil || d.AreaID != "qn1.tk" {
				t.Fatalf("%s: device rx1 %+v, %v", tn.id, d, err)
			}
		}
		// The token's secret works on every node: its hash was chosen once.
		var secret string
		c.onLeader(t, func(ctx context.Context, db *store.DB) (err error) {
			secret, err = db.CreateToken(ctx, &loa.Token{ID: "everywhere", Name: "everywhere", Role: loa.RoleAdmin})
			return err
		})
		c.converged(t, l)
		for _, tn := range c.nodes {
			if tok, err := tn.db.TokenBySecret(ctx, secret); err != nil || tok.Name != "everywhere" {
				t.Fatalf("%s: token %+v, %v", tn.id, tok, err)
			}
		}
	})

	t.Run("FollowerRefuses", func(t *testing.T) {
		f := c.node("c2")
		if f == c.leader(t) {
			f = c.node("c1")
		}
		before := dump(t, f.db)
		err := f.db.CreateArea(ctx, &loa.Area{ID: "x", Name: "X", Kind: loa.AreaProvince})
		if loa.ErrorCode(err) != loa.EUNAVAILABLE {
			t.Fatalf("write on a follower: %v, want EUNAVAILABLE", err)
		}
		if msg, now := loa.ErrorMessage(err), c.leader(t); !strings.Contains(msg, "node "+now.id+" at "+now.addr) &&
			!strings.Contains(msg, "node "+l.id+" at "+l.addr) {
			t.Fatalf("error %q does not name the leader %s at %s", msg, now.id, now.addr)
		}
		if d := diff(before, dump(t, f.db)); d != "" {
			t.Fatalf("the refused write changed the follower: %s", d)
		}
		// Its own live device state is local and still written.
		if err := f.db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx1", Online: true}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		want := dump(t, l.db)
		var stores []*store.DB
		for range 2 {
			db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stores = append(stores, db)
		}
		first, _ := l.n.logs.FirstIndex()
		last, _ := l.n.logs.LastIndex()
		entries := 0
		for i := first; i <= last; i++ {
			var e raft.Log
			if err := l.n.logs.GetLog(i, &e); err != nil {
				t.Fatal(err)
			}
			if e.Type != raft.LogCommand {
				continue
			}
			entries++
			for _, db := range stores {
				if err := db.ApplyWriteSet(e.Index, e.Data); err != nil {
					t.Fatalf("entry %d: %v", e.Index, err)
				}
			}
		}
		if entries < 8 {
			t.Fatalf("%d entries in the log, want one per write", entries)
		}
		for i, db := range stores {
			if d := diff(want, dump(t, db)); d != "" {
				t.Fatalf("replay %d: %s", i, d)
			}
		}
	})

	t.Run("WitnessHandsOff", func(t *testing.T) {
		if err := c.leader(t).n.TransferLeadership(ctx, "w"); err != nil {
			t.Fatal(err)
		}
		var st Status
		loatest.Eventually(t, wait, func() bool {
			st = c.node("w").n.Status()
			return st.LeaderID != "" && st.LeaderID != "w" && c.node(st.LeaderID).n.IsLeader()
		}, "the witness kept leadership")
		if st.Term <= 1 {
			t.Fatalf("term %d after two elections", st.Term)
		}
		if c.node("w").n.IsLeader() {
			t.Fatal("the witness reports leading")
		}
	})

	t.Run("LeaderKilled", func(t *testing.T) {
		old := c.leader(t)
		old.stop(t)
		l := c.leader(t) // the other controller: the witness hands off
		if l.witness || l == old {
			t.Fatalf("new leader %s", l.id)
		}
		c.writeRecords(t, "2")
		old.start(t, nil) // from its data dir: it is still a member
		c.converged(t, l)
	})

	t.Run("FollowerCatchesUpBySnapshot", func(t *testing.T) {
		l := c.leader(t)
		var f *tnode
		for _, tn := range c.nodes {
			if tn != l && !tn.witness {
				f = tn
			}
		}
		f.stop(t)
		c.writeRecords(t, "3")
		c.writeRecords(t, "4")
		if err := l.n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		first, _ := l.n.logs.FirstIndex()
		applied, _ := f.dbApplied(t)
		if first <= applied+1 {
			t.Fatalf("log still starts at %d, the follower has %d: no snapshot needed", first, applied)
		}
		if m := member(c.leader(t).n.Status(), f.id); m.Lag == 0 {
			t.Fatalf("the stopped follower shows no lag: %+v", m)
		}
		f.start(t, nil)
		c.converged(t, l)
		// Counted just after the store took the snapshot.
		loatest.Eventually(t, wait, func() bool { return f.n.Status().SnapshotsInstalled > 0 },
			"the follower caught up without a snapshot")
		loatest.Eventually(t, wait, func() bool { return member(l.n.Status(), f.id).Lag == 0 },
			"the leader still sees the follower behind")
		if _, err := f.db.Device(ctx, "rx4"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Status", func(t *testing.T) {
		l := c.leader(t)
		st := l.n.Status()
		if st.State != "Leader" || !st.Leading || st.LeaderID != l.id || len(st.Members) != 3 {
			t.Fatalf("status %+v", st)
		}
		for _, tn := range c.nodes {
			want := 0.0
			if tn == l {
				want = 1
			}
			ms := tn.n.Collectors()
			if got := testutil.ToFloat64(ms[0]); got != want {
				t.Fatalf("%s: loa_cluster_leader %v, want %v", tn.id, got, want)
			}
			if got := testutil.ToFloat64(ms[1]); got != float64(st.Term) && tn == l {
				t.Fatalf("%s: loa_cluster_term %v, want %d", tn.id, got, st.Term)
			}
			reg := prometheus.NewPedanticRegistry()
			for _, m := range ms {
				if err := reg.Register(m); err != nil {
					t.Fatal(err)
				}
			}
		}
		var buf bytes.Buffer
		for _, m := range st.Members {
			fmt.Fprintf(&buf, "%s:%v ", m.ID, m.Witness)
		}
		if !strings.Contains(buf.String(), "w:true") {
			t.Fatalf("members %s: the witness is not marked", buf.String())
		}
	})
}

// dbApplied reads a stopped node's applied index from its store file.
func (tn *tnode) dbApplied(t testing.TB) (uint64, error) {
	t.Helper()
	db, err := store.Open(filepath.Join(tn.dir, "loa.db"), store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.AppliedIndex()
}

// A station that had records before it became a cluster gives them to a
// node that joins it: the first leader seeds the log with its store.
func TestSeedFromExistingStation(t *testing.T) {
	c := &tcluster{t: t, nodes: []*tnode{{id: "c1", dir: t.TempDir()}, {id: "c2", dir: t.TempDir()}}}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			tn.stop(t)
		}
	})
	single, err := store.Open(filepath.Join(c.nodes[0].dir, "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := single.CreateArea(context.Background(), &loa.Area{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := single.Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[0].start(t, []Peer{{ID: "c1"}})
	l := c.leader(t)
	c.nodes[1].start(t, nil)
	if err := l.n.AddVoter(context.Background(), "c2", c.nodes[1].addr); err != nil {
		t.Fatal(err)
	}
	c.converged(t, l)
	if _, err := c.nodes[1].db.Area(context.Background(), "hn"); err != nil {
		t.Fatalf("the joined node lacks the station's area: %v", err)
	}
}

// A follower whose disk refuses an entry does not skip it (its store would
// fork): it retries, shows it is stuck, and catches up once the disk takes
// writes again.
func TestFollowerDiskFullCatchesUp(t *testing.T) {
	c := &tcluster{t: t, nodes: []*tnode{{id: "c1", dir: t.TempDir()}, {id: "c2", dir: t.TempDir(), faults: new(store.WriteFaults)}}}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			tn.stop(t)
		}
	})
	c.nodes[0].start(t, []Peer{{ID: "c1"}})
	l := c.leader(t)
	f := c.nodes[1]
	f.start(t, nil)
	if err := l.n.AddVoter(context.Background(), "c2", f.addr); err != nil {
		t.Fatal(err)
	}
	c.converged(t, l)
	if err := f.faults.Arm(); err != nil {
		t.Fatal(err)
	}
	// Two voters: the entry commits once the follower's raft log (its own
	// file, not the full one) has it, whatever its store does.
	c.onLeader(t, func(ctx context.Context, db *store.DB) error {
		return db.CreateArea(ctx, &loa.Area{ID: "full", Name: "Full", Kind: loa.AreaProvince})
	})
	loatest.Eventually(t, wait, func() bool { return f.n.Status().ApplyStuck }, "the follower never reported being stuck")
	if err := f.faults.Disarm(); err != nil {
		t.Fatal(err)
	}
	c.converged(t, l)
	// The flag clears just after the entry's transaction commits.
	loatest.Eventually(t, wait, func() bool { return !f.n.Status().ApplyStuck }, "still stuck after catching up")
}

func member(s Status, id string) Member {
	for _, m := range s.Members {
		if m.ID == id {
			return m
		}
	}
	return Member{}
}
