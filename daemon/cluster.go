package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/cluster"
	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/store"
)

// ClusterConfig makes the controller one node of a Raft group (two
// controllers and a witness), named by Config.NodeID. No Peers: one
// controller, no Raft.
type ClusterConfig struct {
	NodeID        string        // set from Config.NodeID by Validate
	RaftBind      string        // host:port of Raft's TCP transport
	RaftAdvertise string        // the address peers reach RaftBind at; default RaftBind
	Peers         []ClusterPeer // every node, this one included
	// NoQuorumAfter is how long a node must see no leader before the
	// period is recorded as no_quorum (longer than an election);
	// 0 = DefaultNoQuorumAfter.
	NoQuorumAfter time.Duration
}

// ClusterPeer is one node as the others know it.
type ClusterPeer struct {
	ID      string
	Raft    string // host:port
	API     string // base URL of its API and console, where followers send writes
	MQTT    string // broker URL devices are given
	Witness bool   // votes and keeps the store; never acts
}

// Enabled says whether the controller runs as a cluster node.
func (c ClusterConfig) Enabled() bool { return len(c.Peers) > 0 }

func (c ClusterConfig) self() (ClusterPeer, bool) {
	for _, p := range c.Peers {
		if p.ID == c.NodeID {
			return p, true
		}
	}
	return ClusterPeer{}, false
}

func (c ClusterConfig) peer(id string) (ClusterPeer, bool) {
	for _, p := range c.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return ClusterPeer{}, false
}

// validate checks the node's own entry and the peers' ids and addresses.
func (c ClusterConfig) validate() error {
	if !c.Enabled() {
		return nil
	}
	if err := loa.ValidateID("node-id", c.NodeID); err != nil {
		return err
	}
	if c.RaftBind == "" {
		return fmt.Errorf("raft-bind: required with -cluster-peer (host:port for Raft)")
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if err := loa.ValidateID("cluster-peer id", p.ID); err != nil {
			return err
		}
		if seen[p.ID] {
			return fmt.Errorf("cluster-peer %s: listed twice", p.ID)
		}
		seen[p.ID] = true
		if _, _, err := net.SplitHostPort(p.Raft); err != nil {
			return fmt.Errorf("cluster-peer %s: raft=%q: want host:port", p.ID, p.Raft)
		}
	}
	if _, ok := c.self(); !ok {
		return fmt.Errorf("cluster-peer: this node (%s) is not among the peers; list every node, this one included", c.NodeID)
	}
	return nil
}

// ParseClusterPeer reads "id=n1,raft=host:port,api=URL,mqtt=URL[,witness]".
func ParseClusterPeer(s string) (ClusterPeer, error) {
	var p ClusterPeer
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "id":
			p.ID = v
		case "raft":
			p.Raft = v
		case "api":
			p.API = strings.TrimRight(v, "/")
		case "mqtt":
			p.MQTT = v
		case "witness":
			p.Witness = true
		case "":
		default:
			return p, fmt.Errorf("cluster-peer %q: unknown key %q (have id, raft, api, mqtt, witness)", s, k)
		}
	}
	if p.ID == "" || p.Raft == "" {
		return p, fmt.Errorf("cluster-peer %q: id= and raft= are required", s)
	}
	return p, nil
}

// Node is a controller in a Raft group. Every node keeps the replicated
// store; only the leader opens the station (a Main on the shared store:
// scheduler, streams, broker, API). A follower serves the console
// read-only from its store and sends changes to the leader
// (cluster_console.go); the witness never leads for long.
type Node struct {
	cfg    Config
	log    *slog.Logger
	DB     *store.DB
	Raft   *cluster.Node
	self   ClusterPeer
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	main     *Main
	follower *http.Server
	// followerCancel ends the follower server's reads and streams.
	followerCancel context.CancelFunc
	tls            *followerTLS              // the TLS ports' configuration, made once
	standby        *broker.Broker            // while following: answers devices CONNACK 3
	watch          context.CancelFunc        // ends the leader's cluster watch
	missing        atomic.Pointer[[]blobRef] // blobs the last catch-up could not pull
	changed        chan struct{}             // closed and replaced when the node's role changes
	noLeader       leaderless                // when this node last saw no leader
	// noQuorumTo is the end of the last period without a leader the
	// no_quorum alarm told of (guarded by noLeader.mu).
	noQuorumTo time.Time
}

// OpenNode opens the replicated store and joins the Raft group; Run then
// follows leadership.
func OpenNode(ctx context.Context, cfg Config, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	self, _ := cfg.Cluster.self()
	n := &Node{cfg: cfg, log: logger.With("node", cfg.Cluster.NodeID), self: self, done: make(chan struct{}), changed: make(chan struct{})}
	db, err := store.Open(filepath.Join(cfg.DataDir, "loa.db"), store.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	n.DB = db
	db.SetBlobReplicator(n)
	peers := make([]cluster.Peer, 0, len(cfg.Cluster.Peers))
	for _, p := range cfg.Cluster.Peers {
		peers = append(peers, cluster.Peer{ID: p.ID, Addr: p.Raft, Witness: p.Witness})
	}
	adv := cfg.Cluster.RaftAdvertise
	if adv == "" {
		adv = self.Raft
	}
	n.Raft, err = cluster.Open(ctx, cluster.Config{
		NodeID: cfg.Cluster.NodeID, Bind: cfg.Cluster.RaftBind, Advertise: adv,
		Dir: filepath.Join(cfg.DataDir, "raft"), Peers: peers, Witness: self.Witness,
		Logger: logger.With("component", "raft"),
	}, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// A restarted node has the cluster's station files in its store.
	if _, err := n.restoreStationFiles(ctx); err != nil {
		n.Raft.Close()
		db.Close()
		return nil, err
	}
	if err := n.serveFollower(); err != nil {
		n.Raft.Close()
		db.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	go n.run(rctx)
	go n.catchUpBlobs(rctx)
	go n.watchLeaderless(rctx)
	go n.watchStationFiles(rctx)
	return n, nil
}

// run opens the station when this node leads and closes it when it stops.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	leading := false
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-n.Raft.Leading():
			leading = l
		case <-retry.C:
		}
		if leading && !n.self.Witness && n.Main() == nil {
			if err := n.lead(ctx); err != nil {
				n.log.Error("cannot open the station as leader; retrying", "err", err)
				retry.Reset(time.Second)
			}
		} else if !leading && n.Main() != nil {
			n.follow()
		}
	}
}

// lead opens the station on the replicated store: a new generation (the
// fence's gen, replicated, so above every earlier leader's), sessions in
// progress resumed at their timeline position, schedules due played late.
func (n *Node) lead(ctx context.Context) error {
	start := time.Now()
	n.stopFollower()
	// The cluster's CA and station key, so receivers trust this node.
	if _, err := n.restoreStationFiles(ctx); err != nil {
		_ = n.serveFollower()
		return err
	}
	m := NewMain(n.cfg, n.log)
	m.DB, m.sharedDB = n.DB, true
	m.fenceTerm = n.Raft.Term()
	m.Cluster = n
	m.wrapHTTP = func(h http.Handler) http.Handler { return n.blobRoutes(n.acceptForwardedCert(n.markApplied(h))) }
	m.clusterCollectors = n.Raft.Collectors()
	if err := n.DB.EnsureClusterSecret(ctx, randomHex(32)); err != nil {
		_ = n.serveFollower()
		return fmt.Errorf("cluster secret: %w", err)
	}
	lease := newLeaderLease(n.Raft.VerifyLeader)
	m.sendGate = lease.valid
	lctx, endLease := context.WithCancel(ctx)
	go lease.run(lctx)
	if err := m.Open(ctx); err != nil {
		endLease()
		if serr := n.serveFollower(); serr != nil {
			n.log.Error("follower endpoint", "err", serr)
		}
		return err
	}
	n.setMain(m)
	if err := n.saveStationFiles(ctx); err != nil { // the first leader's are the station's
		n.log.Error("the station files were not stored for the cluster: copy this node's CA and station key to the others", "err", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n.mu.Lock()
	n.watch = func() { cancel(); <-done; endLease() } // the watch uses m's alarms: ended before m closes
	n.mu.Unlock()
	go func() {
		defer close(done)
		n.watchCluster(wctx, m)
	}()
	n.log.Warn("this node leads: the station is on air here", "term", m.fenceTerm, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// follow closes the station: another node leads (or none yet). Its writes
// would be refused anyway; the receivers ignore its lower fence.
func (n *Node) follow() {
	m := n.Main()
	n.stopWatch()
	n.setMain(nil)
	if err := m.Close(); err != nil {
		n.log.Warn("closing the station after losing leadership", "err", err)
	}
	if err := n.serveFollower(); err != nil {
		n.log.Error("follower endpoint", "err", err)
	}
	n.log.Warn("this node follows", "leader", n.leaderID())
}

func (n *Node) setMain(m *Main) {
	n.mu.Lock()
	n.main = m
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// Main returns the station while this node leads, else nil.
func (n *Node) Main() *Main {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.main
}

// Changed is closed at the node's next change of role.
func (n *Node) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

func (n *Node) leaderID() string {
	id, _ := n.Raft.Leader()
	return id
}

// serveFollower answers on the API and broker addresses while another
// node leads: the console read-only, changes sent to the leader
// (cluster_console.go), devices refused.
func (n *Node) serveFollower() error {
	if _, err := n.followerTLS(); err != nil {
		return err
	}
	var brokerTLS, httpsTLS *tls.Config
	if n.cfg.TLS.MQTTListen != "" {
		brokerTLS = n.currentTLS(func(f followerTLS) *tls.Config { return f.broker })
	}
	if n.cfg.TLS.HTTPSAddr != "" {
		httpsTLS = n.currentTLS(func(f followerTLS) *tls.Config { return f.https })
		httpsTLS.NextProtos = []string{"h2", "http/1.1"}
	}
	if err := n.startStandbyBroker(brokerTLS); err != nil {
		return err
	}
	var lns []net.Listener
	var err error
	for _, addr := range []string{n.cfg.HTTPAddr, n.cfg.TLS.HTTPSAddr} {
		if addr == "" {
			lns = append(lns, nil)
			continue
		}
		var ln net.Listener
		for i := 0; ; i++ { // the station's server may still be letting go of the port
			if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			for _, l := range lns {
				if l != nil {
					l.Close()
				}
			}
			return fmt.Errorf("http (follower): %w", err)
		}
		lns = append(lns, ln)
	}
	// Reads and streams end as soon as this node leads (stopFollower);
	// proxied changes run to their end.
	base, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           n.blobRoutes(n.followerHandler(base)),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes,
		TLSConfig: httpsTLS,
		ErrorLog:  slog.NewLogLogger(n.log.With("component", "http", "role", "follower").Handler(), slog.LevelDebug),
	}
	n.mu.Lock()
	n.follower, n.followerCancel = srv, cancel
	n.mu.Unlock()
	if lns[0] != nil {
		go func() { _ = srv.Serve(lns[0]) }()
	}
	if lns[1] != nil {
		go func() { _ = srv.ServeTLS(lns[1], "", "") }()
	}
	return nil
}

// currentTLS is a TLS configuration that takes, at each handshake, the
// one pick chooses from this node's current station files: a new node's
// CA arrives with the first leader's station files (cluster_keys.go), and
// its ports then answer with it without being reopened.
func (n *Node) currentTLS(pick func(followerTLS) *tls.Config) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur, err := n.followerTLS()
		if err != nil {
			return nil, err
		}
		if c := pick(cur); c != nil {
			return c, nil
		}
		return nil, errors.New("this cluster node has no station certificate yet: the first leader's CA has not reached it")
	}}
}

type followerTLS struct {
	https, broker *tls.Config
	peers         http.RoundTripper // to the other nodes' APIs: the system roots and the station CA
}

// followerTLS is the HTTPS and MQTT-over-TLS configuration the station
// would use on this node (its data directory's CA, -tls-cert or ACME),
// so a follower's TLS ports answer too.
func (n *Node) followerTLS() (followerTLS, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tls != nil {
		return *n.tls, nil
	}
	var out followerTLS
	if n.cfg.TLS.CACert == "" {
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, "tls", pki.CACertFile)); err != nil {
			// A new node: the CA comes with the first leader's station
			// files (cluster_keys.go); until then its TLS ports stay
			// closed rather than show a CA no receiver trusts.
			n.tls = &out
			return out, nil
		}
	}
	m := NewMain(n.cfg, n.log)
	if err := m.openTLS(); err != nil {
		return followerTLS{}, err
	}
	if n.cfg.TLS.HTTPSAddr != "" {
		cfg, err := m.httpsConfig()
		if err != nil {
			return followerTLS{}, err
		}
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		// Asked for, never required, as on the leader: a national
		// controller's push is passed on with its certificate.
		cfg.ClientAuth = tls.RequestClientCert
		out.https = cfg
	}
	if n.cfg.TLS.MQTTListen != "" {
		out.broker = m.PKI.ServerConfig()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = m.brokerTLS()
	out.peers = tr
	n.tls = &out
	return out, nil
}

// startStandbyBroker listens on the embedded broker's addresses and
// refuses every device with CONNACK 3 (server unavailable), so receivers
// move on to the next controller's broker at once instead of waiting on
// a connection timeout.
func (n *Node) startStandbyBroker(tlsCfg *tls.Config) error {
	if n.cfg.MQTTURL != "" || (n.cfg.MQTTListen == "" && tlsCfg == nil) {
		return nil
	}
	bc := broker.Config{
		Addr: n.cfg.MQTTListen, Standby: true,
		ControllerUser: n.cfg.MQTTUser, ControllerPassword: randomHex(16),
		Auth: n.DB, Logger: n.log.With("component", "broker", "standby", true),
	}
	if tlsCfg != nil {
		bc.TLSAddr, bc.TLS = n.cfg.TLS.MQTTListen, tlsCfg
	}
	b, err := broker.New(bc)
	if err != nil {
		return fmt.Errorf("standby broker: %w", err)
	}
	var serr error
	for i := 0; i < 50; i++ { // the station's broker may still be letting go of the port
		if serr = b.Start(context.Background()); serr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if serr != nil {
		return fmt.Errorf("standby broker: %w", serr)
	}
	n.mu.Lock()
	n.standby = b
	n.mu.Unlock()
	return nil
}

func (n *Node) stopFollower() {
	n.mu.Lock()
	srv, b, cancel := n.follower, n.standby, n.followerCancel
	n.follower, n.standby, n.followerCancel = nil, nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if b != nil {
		if err := b.Close(); err != nil {
			n.log.Warn("closing the standby broker", "err", err)
		}
	}
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
}

// Close stops the station if it runs here, then leaves Raft and closes
// the store.
func (n *Node) Close() error {
	n.cancel()
	<-n.done
	var errs []error
	if m := n.Main(); m != nil {
		n.stopWatch()
		n.setMain(nil)
		errs = append(errs, m.Close())
	}
	n.stopFollower()
	errs = append(errs, n.Raft.Close())
	errs = append(errs, n.DB.Close())
	return errors.Join(errs...)
}

// ClusterStatus is what GET /api/v1/cluster answers (api.ClusterAdmin).
func (n *Node) ClusterStatus(ctx context.Context) (*api.ClusterStatus, error) {
	st := n.Raft.Status()
	out := &api.ClusterStatus{
		Node: st.ID, State: st.State, Leader: st.LeaderID, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
	}
	if m := n.Main(); m != nil && m.fence.Gen != 0 {
		out.Fence = &api.ClusterFence{Gen: m.fence.Gen, Term: m.fence.Term}
	}
	for _, s := range st.Members {
		p, _ := n.cfg.Cluster.peer(s.ID)
		out.Servers = append(out.Servers, api.ClusterServer{ID: s.ID, Raft: s.Addr, Voter: s.Voter, Witness: s.Witness || p.Witness, API: p.API, MQTT: p.MQTT})
	}
	return out, nil
}

// TransferLeadership hands leadership to id ("" for any other voter).
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if id != "" {
		if p, ok := n.cfg.Cluster.peer(id); ok && p.Witness {
			return loa.Errorf(loa.EINVALID, "to: %s is the witness, which never acts", id)
		}
	}
	return n.Raft.TransferLeadership(ctx, id)
}

// AddVoter adds a node to the group.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.Raft.AddVoter(ctx, id, addr)
}

// RemoveServer removes a node from the group.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.Raft.RemoveServer(ctx, id)
}

// stopWatch ends the leader's cluster watch and waits for it.
func (n *Node) stopWatch() {
	n.mu.Lock()
	stop := n.watch
	n.watch = nil
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// clusterPresenceSettle is how long a leader's receivers not heard yet
// count as of unknown presence: two 30 s keep-alives and a reconnect round.
const clusterPresenceSettle = 75 * time.Second

// lagAlarm is how far behind the leader's log a node may fall before the
// cluster_node alarm names it.
const lagAlarm = 1000

// watchCluster raises, on the leader, cluster_node while a node does not
// answer or lags far behind, and blob_missing while a node lacks a file
// its records reference (each node's own catch-up says which).
func (n *Node) watchCluster(ctx context.Context, m *Main) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.Alarms == nil {
			continue
		}
		var down []string
		for _, mem := range n.Raft.Status().Members {
			switch {
			case mem.ID == n.self.ID:
			case mem.Unreachable:
				down = append(down, mem.ID+" does not answer")
			case mem.Lag > lagAlarm:
				down = append(down, fmt.Sprintf("%s lags %d entries behind", mem.ID, mem.Lag))
			}
		}
		m.Alarms.Station(loa.AlarmClusterNode, len(down) > 0, loa.SeverityCritical, float64(len(down)), 0,
			"controller cluster: "+strings.Join(down, "; ")+" (the station stays on air while a quorum answers; see loa cluster status)")
		var missing []string
		if p := n.missing.Load(); p != nil && len(*p) > 0 { // this node's own catch-up
			missing = append(missing, fmt.Sprintf("%s lacks %d file(s), e.g. %s/%s", n.self.ID, len(*p), (*p)[0].kind, (*p)[0].hash))
		}
		for _, p := range n.cfg.Cluster.Peers {
			if p.ID == n.self.ID || p.API == "" {
				continue
			}
			if l, err := n.peerMissing(ctx, p); err == nil && len(l) > 0 {
				missing = append(missing, fmt.Sprintf("%s lacks %d file(s), e.g. %s", p.ID, len(l), l[0]))
			}
		}
		m.Alarms.Station(loa.AlarmBlobMissing, len(missing) > 0, loa.SeverityWarning, float64(len(missing)), 0,
			"controller cluster: "+strings.Join(missing, "; ")+" (it pulls them from the other nodes; until then that audio cannot play there)")
	}
}
