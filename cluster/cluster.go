// Package cluster replicates a station's store on Raft (hashicorp/raft,
// its log and stable store in bbolt via raft-boltdb): two controllers and
// a witness, or any odd number of nodes. The leader runs each write
// transaction, records its effects as a write set (store) and proposes
// it; every node applies committed write sets to its own store. A node
// that is not the leader refuses changes with an error naming the
// leader. A witness votes and keeps a full store, but hands leadership
// away as soon as it wins.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// A Peer is a member of the cluster.
type Peer struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"` // Raft TCP host:port
	Witness bool   `json:"witness,omitempty"`
}

// Config configures a node. Zero timeouts take the defaults, chosen for
// 4G links between controllers (a heartbeat every ~500 ms, an election
// after 1–2 s without one).
type Config struct {
	NodeID string
	// Bind is the Raft TCP listen address (host:port; port 0 picks one,
	// see Node.Addr). Advertise is the address peers reach it at, when
	// Bind is not (0.0.0.0, NAT); default Bind's actual address.
	Bind, Advertise string
	// Dir holds raft.db (the log and stable store) and snapshots/.
	Dir string
	// Peers are the initial voters, this node included, of a new cluster:
	// a node whose log is empty bootstraps with them. A Peer whose ID is
	// NodeID and whose Addr is empty is this node at its actual address.
	// Leave Peers empty on a node that joins an existing cluster: it waits
	// until the leader adds it (AddVoter). Peers marked Witness are never
	// handed leadership by a witness.
	Peers []Peer
	// Witness: this node votes and keeps the store, but transfers
	// leadership away as soon as it wins an election, and never reports
	// Leading.
	Witness bool
	// Witnesses are the ids of the cluster's witness members (besides
	// Peers marked Witness): a witness never hands leadership to one, and
	// Status marks them.
	Witnesses []string
	Logger    *slog.Logger

	HeartbeatTimeout time.Duration // default 500ms
	ElectionTimeout  time.Duration // default 1s
	LeaderLease      time.Duration // a leader out of touch with a quorum this long steps down; default (and at most) HeartbeatTimeout
	ApplyTimeout     time.Duration // how long Replicate waits for a commit without a ctx deadline; default 10s
	// SnapshotThreshold is how many entries since the last snapshot make
	// the next one; TrailingLogs how many are kept behind it (a follower
	// further behind is sent the snapshot). Defaults 8192 and 10240.
	SnapshotThreshold, TrailingLogs uint64
	SnapshotInterval                time.Duration // how often the threshold is checked; default 2m
}

// A Node is this process's member of the cluster. It is the store's
// replicator (store.Replicator).
type Node struct {
	cfg       Config
	db        *store.DB
	log       *slog.Logger
	raft      *raft.Raft
	transport *progressTransport
	logs      *raftboltdb.BoltStore
	snaps     *raft.FileSnapshotStore
	fsm       *fsm
	witnesses map[string]bool

	// ready: this node leads and has applied every entry before its term
	// (Barrier), so a transaction it runs reads the latest state.
	ready   atomic.Bool
	leading chan bool
	failing sync.Map // peer id → time of last contact, while heartbeats to it fail

	stop    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
}

var _ store.Replicator = (*Node)(nil)

// Open starts this node's Raft member over db and makes db replicate its
// changes through it. The node bootstraps a new cluster when its log is
// empty and cfg.Peers is set.
func Open(ctx context.Context, cfg Config, db *store.DB) (*Node, error) {
	if cfg.NodeID == "" || cfg.Bind == "" || cfg.Dir == "" {
		return nil, loa.Errorf(loa.EINVALID, "cluster: node id, bind address and directory are required")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Until raft runs, and if Open fails, the store refuses changes: made
	// locally they would fork it from the cluster's.
	db.SetReplicator(closed{})
	defaults(&cfg)
	n := &Node{cfg: cfg, db: db, log: cfg.Logger, leading: make(chan bool, 1), stop: make(chan struct{}),
		witnesses: map[string]bool{}}
	for _, p := range cfg.Peers {
		if p.Witness {
			n.witnesses[p.ID] = true
		}
	}
	for _, id := range cfg.Witnesses {
		n.witnesses[id] = true
	}
	if cfg.Witness {
		n.witnesses[cfg.NodeID] = true
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	removeSnapshotTemps(cfg.Dir)
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	hl := hclogFor(cfg.Logger)
	var advertise net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			return nil, loa.Errorf(loa.EINVALID, "cluster: advertise address %q: %v", cfg.Advertise, err)
		}
		advertise = a
	}
	tcp, err := raft.NewTCPTransportWithLogger(cfg.Bind, advertise, 3, 10*time.Second, hl)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.Bind, err)
	}
	n.transport = newProgressTransport(tcp)
	if n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"),
		BoltOptions: boltOptions()}); err != nil {
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl); err != nil {
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	if err := restoreNewerSnapshot(n.snaps, db, n.log); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLease
	rc.CommitTimeout = cfg.HeartbeatTimeout / 10
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.NoSnapshotRestoreOnStart = true // the store persists; see restoreNewerSnapshot
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, loa.Errorf(loa.EINVALID, "cluster: %v", err)
	}

	existing, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !existing && len(cfg.Peers) > 0 {
		var conf raft.Configuration
		for _, p := range cfg.Peers {
			addr := p.Addr
			if p.ID == cfg.NodeID && addr == "" {
				addr = string(n.transport.LocalAddr())
			}
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter,
				ID: raft.ServerID(p.ID), Address: raft.ServerAddress(addr)})
		}
		if err := raft.BootstrapCluster(rc, n.logs, n.logs, n.snaps, n.transport, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}

	n.fsm = &fsm{db: db, dir: cfg.Dir, log: n.log, closing: make(chan struct{})}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, n.snaps, n.transport); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	obs := make(chan raft.Observation, 16)
	n.raft.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	}))
	db.SetReplicator(n)
	ok = true
	n.wg.Add(2)
	go n.watchLeadership(notify)
	go n.watchPeers(obs)
	n.log.Info("cluster: node started", "id", cfg.NodeID, "addr", n.Addr(), "witness", cfg.Witness, "bootstrap", !existing && len(cfg.Peers) > 0)
	return n, nil
}

func defaults(c *Config) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderLease <= 0 || c.LeaderLease > c.HeartbeatTimeout {
		c.LeaderLease = c.HeartbeatTimeout
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
}

// Addr returns the address this node's Raft transport listens at.
func (n *Node) Addr() string { return string(n.transport.LocalAddr()) }

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Leading delivers true when this node becomes the leader and has applied
// every earlier entry (it may then act: schedule, stream, command), and
// false when it stops leading. Only the latest value is kept if the
// receiver is slow. A witness never reports true.
func (n *Node) Leading() <-chan bool { return n.leading }

// IsLeader tells whether this node leads and may write (see Leading).
func (n *Node) IsLeader() bool { return n.ready.Load() }

// Leader returns the leader's id and Raft address, empty if none is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// AppliedIndex returns the index of the last entry applied to this
// node's store.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Term returns the current Raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// Writable implements store.Replicator.
func (n *Node) Writable() error {
	if n.ready.Load() {
		return nil
	}
	return n.notLeader()
}

func (n *Node) notLeader() error {
	id, addr := n.Leader()
	if id == n.cfg.NodeID {
		return loa.Errorf(loa.EUNAVAILABLE, "this node has just been elected the cluster's leader and is catching up: the change was not made; retry shortly")
	}
	return store.NotLeaderError(id, addr)
}

// Replicate implements store.Replicator: it proposes ws and waits until
// it is committed and applied to this node's store.
func (n *Node) Replicate(ctx context.Context, ws []byte) error {
	if !n.ready.Load() {
		return n.notLeader()
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(ws, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("cluster: waiting for the change to commit (it may still): %w", ctx.Err())
	}
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w (%w)", n.notLeader(), err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w (%w)", loa.Errorf(loa.EUNAVAILABLE, "the cluster did not commit the change in time (no quorum?); it was not made"), err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w (%w)", loa.Errorf(loa.EUNAVAILABLE, "this cluster node is shutting down: the change was not made"), err)
	case err != nil:
		return fmt.Errorf("cluster: replicate: %w", err)
	}
	if e, ok := f.Response().(error); ok && e != nil {
		return e
	}
	return nil
}

// watchLeadership turns raft's leadership notifications into Leading:
// a new leader first applies every entry of earlier terms (Barrier); a
// witness hands leadership away instead.
func (n *Node) watchLeadership(notify <-chan bool) {
	defer n.wg.Done()
	var again *time.Timer // retries taking up (or, on a witness, handing off) leadership
	stopAgain := func() {
		if again != nil {
			again.Stop()
			again = nil
		}
	}
	for {
		var retry <-chan time.Time
		if again != nil {
			retry = again.C
		}
		select {
		case <-n.stop:
			stopAgain()
			return
		case <-retry:
			again = nil
			if n.raft.State() == raft.Leader {
				again = n.takeLead()
			}
		case leader := <-notify:
			stopAgain()
			if leader {
				again = n.takeLead()
				continue
			}
			if n.ready.Swap(false) {
				n.signal(false)
			}
			n.log.Info("cluster: no longer the leader", "id", n.cfg.NodeID)
		}
	}
}

// takeLead makes an elected controller serve writes once it has applied
// the log, or a witness hand leadership away. It returns a timer to try
// again if that failed while this node still leads.
func (n *Node) takeLead() *time.Timer {
	var err error
	if n.cfg.Witness {
		err = n.handOff()
	} else if err = n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err == nil && n.raft.State() == raft.Leader {
		err = n.seed()
	}
	if n.raft.State() != raft.Leader {
		return nil // a lost leadership is notified next
	}
	if err != nil {
		n.log.Warn("cluster: elected, but not ready to lead; retrying", "witness", n.cfg.Witness, "err", err)
		return time.NewTimer(n.cfg.ElectionTimeout)
	}
	if !n.cfg.Witness && !n.ready.Swap(true) {
		n.log.Info("cluster: leading", "id", n.cfg.NodeID, "term", n.Term())
		n.signal(true)
	}
	return nil
}

// seed makes the first leader of a cluster whose log has never carried a
// change propose its store's records as the first entry, so that a
// station that already had records when it became a cluster gives them to
// every node. Only one node may bring records into a new cluster: the
// others must start with empty stores.
func (n *Node) seed() error {
	applied, err := n.db.AppliedIndex()
	if err != nil || applied != 0 {
		return err
	}
	ws, err := n.db.SeedWriteSet(context.Background())
	if err != nil || ws == nil {
		return err
	}
	n.log.Info("cluster: seeding the log with this station's records", "bytes", len(ws))
	f := n.raft.Apply(ws, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return err
	}
	if e, ok := f.Response().(error); ok {
		return e
	}
	return nil
}

// handOff transfers a witness's leadership to the most up-to-date
// controller that answers it: a controller that froze (the old leader)
// may be as up to date as the live one, and a transfer to it only times
// out, an election timeout lost.
func (n *Node) handOff() error {
	if s, ok := n.answeringController(time.Now(), n.cfg.HeartbeatTimeout); ok {
		if err := n.raft.LeadershipTransferToServer(s.ID, s.Address).Error(); err == nil {
			n.log.Info("cluster: witness handed leadership away", "id", n.cfg.NodeID, "to", s.ID)
			return nil
		}
	}
	var err error
	if n.otherWitnesses() {
		err = errors.New("no controller took leadership")
		for _, s := range n.servers() {
			if s.Suffrage != raft.Voter || n.witnesses[string(s.ID)] {
				continue
			}
			if err = n.raft.LeadershipTransferToServer(s.ID, s.Address).Error(); err == nil {
				break
			}
		}
	} else {
		// raft picks the most up-to-date other voter: a controller, as this
		// is the only witness.
		err = n.raft.LeadershipTransfer().Error()
	}
	if err == nil {
		n.log.Info("cluster: witness handed leadership away", "id", n.cfg.NodeID)
	}
	return err
}

// answeringController waits up to wait for a controller to answer this
// leader's appends after since, and returns the most up-to-date of those
// that did.
func (n *Node) answeringController(since time.Time, wait time.Duration) (raft.Server, bool) {
	deadline := time.Now().Add(wait)
	for {
		var best raft.Server
		var bestLog uint64
		found := false
		for _, s := range n.servers() {
			if s.Suffrage != raft.Voter || n.witnesses[string(s.ID)] || string(s.ID) == n.cfg.NodeID {
				continue
			}
			if p, ok := n.transport.progress(s.ID); ok && p.at.After(since) && (!found || p.lastLog > bestLog) {
				best, bestLog, found = s, p.lastLog, true
			}
		}
		if found || !time.Now().Before(deadline) || n.raft.State() != raft.Leader {
			return best, found
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *Node) otherWitnesses() bool {
	for id := range n.witnesses {
		if id != n.cfg.NodeID {
			return true
		}
	}
	return false
}

func (n *Node) signal(v bool) {
	for {
		select {
		case n.leading <- v:
			return
		default:
		}
		select { // drop the stale value
		case <-n.leading:
		default:
		}
	}
}

// watchPeers keeps which peers the leader fails to reach, for Status.
func (n *Node) watchPeers(obs <-chan raft.Observation) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case o := <-obs:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				n.failing.Store(string(d.PeerID), d.LastContact)
			case raft.ResumedHeartbeatObservation:
				n.failing.Delete(string(d.PeerID))
			}
		}
	}
}

func (n *Node) servers() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// AddVoter adds (or re-addresses) a voting member; on the leader only.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.membership(ctx, "add "+id, func(t time.Duration) raft.Future {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, t)
	})
}

// RemoveServer removes a member; on the leader only.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.membership(ctx, "remove "+id, func(t time.Duration) raft.Future {
		return n.raft.RemoveServer(raft.ServerID(id), 0, t)
	})
}

// TransferLeadership hands leadership to member id, or to the most
// up-to-date other voter if id is empty; on the leader only.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.membership(ctx, "transfer leadership", func(time.Duration) raft.Future {
		if id == "" {
			return n.raft.LeadershipTransfer()
		}
		for _, s := range n.servers() {
			if string(s.ID) == id {
				return n.raft.LeadershipTransferToServer(s.ID, s.Address)
			}
		}
		return errFuture{loa.Errorf(loa.ENOTFOUND, "cluster: no member %q", id)}
	})
}

type errFuture struct{ err error }

func (f errFuture) Error() error { return f.err }

func (n *Node) membership(ctx context.Context, what string, op func(time.Duration) raft.Future) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	err := op(timeout).Error()
	if errors.Is(err, raft.ErrNotLeader) {
		return fmt.Errorf("%w (%w)", n.notLeader(), err)
	}
	if err != nil && loa.ErrorCode(err) == loa.EINTERNAL {
		return fmt.Errorf("cluster: %s: %w", what, err)
	}
	return err
}

// Snapshot makes raft take a snapshot now (and compact its log).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// Close leaves the cluster's work to the other nodes: it stops raft (a
// leader does not hand over first; use TransferLeadership for a planned
// stop) and leaves db refusing changes. Close the store after it.
// VerifyLeader confirms with a quorum that this node still leads.
func (n *Node) VerifyLeader() error { return n.raft.VerifyLeader().Error() }

func (n *Node) Close() error {
	var err error
	n.closing.Do(func() {
		n.db.SetReplicator(closed{})
		n.ready.Store(false)
		close(n.fsm.closing)
		err = n.raft.Shutdown().Error()
		close(n.stop)
		n.wg.Wait()
		n.closeStores()
	})
	return err
}

func (n *Node) closeStores() {
	if n.transport != nil {
		_ = n.transport.Close()
	}
	if n.logs != nil {
		_ = n.logs.Close()
	}
}

// closed is the replicator of a store whose node has stopped (or not
// started): writing locally would fork it from the cluster.
type closed struct{}

func (closed) Writable() error {
	return loa.Errorf(loa.EUNAVAILABLE, "this cluster node is not running (starting or stopped): the change was not made")
}

func (c closed) Replicate(context.Context, []byte) error { return c.Writable() }
