package daemon

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// The console on a follower. A follower keeps the whole station's records
// (Raft applies every change to its store), so it answers the console's
// reads itself: the station stays visible while the leader is
// unreachable or being replaced. Every change, and every read of state
// only the leader holds (command results, stream listeners, live alert
// reports), goes to the leader through a reverse proxy, so a browser's
// sign-in cookie and CSRF token work across it. Receivers' presence is
// asked of the leader every few seconds. /api/v1/me names the leader;
// the console shows a banner.

// appliedHeader carries the leader's applied Raft index on the answer to a
// change; the follower that proxied it waits to have applied as much
// before answering, so the change is in the next read it serves.
const appliedHeader = "X-Loa-Applied"

// followerReadWait bounds that wait: a follower far behind answers anyway
// (its reads catch up; the change itself is made).
const followerReadWait = 3 * time.Second

// followerReads are the first path segments under /api/v1/ a follower
// answers from its own store, GET and HEAD only.
var followerReads = []string{
	"me", "areas", "devices", "alarms", "alerts", "sessions", "schedules", "agenda", "calendars",
	"playlists", "media", "playlog", "reports", "audit", "tokens", "users", "drafts", "bulletins",
	"fallbacks", "stored-messages", "firmware", "rollouts", "events", "cluster", "openapi.yaml",
}

// servedByFollower reports whether a follower answers r itself.
func servedByFollower(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, "/api/v1/")
	if !ok {
		// The console's files and /metrics; receivers' downloads (/fw/,
		// /cache/) authenticate against the leader's broker accounts.
		return p == "/metrics" || !(strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/fw/") || strings.HasPrefix(p, "/cache/"))
	}
	seg, sub, _ := strings.Cut(rest, "/")
	if !slices.Contains(followerReads, seg) {
		return false
	}
	switch {
	case seg == "sessions" && strings.HasSuffix(sub, "/sdp"): // adds a listener to a stream
		return false
	case seg == "alerts" && strings.HasSuffix(sub, "/events"): // live reports
		return false
	case seg == "devices" && strings.HasSuffix(sub, "/health"): // hourly health is each node's own
		return false
	}
	return true
}

// followerHandler: /healthz says who leads (503: this node does not act,
// so a load balancer sends users elsewhere); reads are answered here,
// everything else is proxied to the leader.
func (n *Node) followerHandler(ctx context.Context) http.Handler {
	presence := &leaderPresence{}
	go n.followPresence(ctx, presence)
	local := n.followerAPI(presence)
	touches := &sessionTouches{last: map[string]time.Time{}}
	proxy := n.leaderProxy()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			id, _ := n.Raft.Leader()
			leader, _ := n.cfg.Cluster.peer(id)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"ok": false, "role": "follower", "node": n.cfg.Cluster.NodeID, "leader": id, "leader_api": leader.API,
				"term": n.Raft.Term(),
			})
			return
		}
		if servedByFollower(r) {
			if ck, err := r.Cookie(api.SessionCookie); err == nil && touches.due(ck.Value) {
				go n.touchSession(ck)
			}
			local.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// A sign-in session ends after loa.SessionIdle unused, and only the
// leader can note its use. So a follower that serves a session's reads
// asks the leader's /api/v1/me with it, at most every sessionTouchEvery:
// a wall display watching a follower's console stays signed in.
const sessionTouchEvery = 10 * time.Minute

type sessionTouches struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (s *sessionTouches) due(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.last[id]) < sessionTouchEvery {
		return false
	}
	if len(s.last) > 10000 {
		for k, t := range s.last {
			if now.Sub(t) >= sessionTouchEvery {
				delete(s.last, k)
			}
		}
	}
	s.last[id] = now
	return true
}

func (n *Node) touchSession(ck *http.Cookie) {
	leader, ok := n.otherLeader()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, leader.API+"/api/v1/me", nil)
	if err != nil {
		return
	}
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	res, err := n.blobClient().Do(req)
	if err != nil {
		n.log.Debug("a sign-in session's use not noted on the leader", "err", err)
		return
	}
	res.Body.Close()
}

// ClusterRole is this node's place in the group (api.ClusterRoler).
func (n *Node) ClusterRole() api.ClusterRole {
	id, _ := n.Raft.Leader()
	leader, _ := n.cfg.Cluster.peer(id)
	role := "follower"
	switch {
	case n.self.Witness:
		role = "witness"
	case n.Main() != nil:
		role = "leader"
	}
	return api.ClusterRole{Node: n.cfg.Cluster.NodeID, Role: role, Leader: id, LeaderAPI: leader.API}
}

// followerAPI is the API on this node's store with only what reads need:
// nothing here streams, commands or schedules. Its changes would be
// refused by the store (not the leader); the handler never sends it any.
func (n *Node) followerAPI(presence loa.PresenceService) http.Handler {
	db, log := n.DB, n.log.With("component", "api", "role", "follower")
	sessions := station.NewSessions(db, nil, nil, log)
	med := station.NewMedia(db, media.Options{MaxDuration: n.cfg.MaxMediaDuration}, station.TranscodeLimits{}, log)
	schedules := station.NewSchedules(db, log)
	delay := n.cfg.Delay
	if delay == 0 {
		delay = protocol.DefaultDelay
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(n.Raft.Collectors()...)
	srv := &api.Server{
		Areas: db, Devices: db, Presence: presence, Media: med, Sessions: sessions, Deliveries: sessions,
		Tokens: db, Users: db, Audit: db, Playlists: db, Schedules: schedules, PlayLog: station.NewPlayLog(db),
		Alerts:    station.NewAlerts(db, sessions, nil, nil, delay, log),
		Alarms:    &storedAlarms{db: db, every: 2 * time.Second},
		Fallbacks: station.NewFallbacks(db, sessions, log),
		Drafts:    station.NewApprovals(db, med, schedules, db, log),
		Bulletins: station.NewBulletins(db, med, nil, sessions, schedules, nil, log),
		Reports:   station.NewReports(db),
		Storage:   db, Cluster: n, Gatherer: reg, Delay: delay,
		MapTiles: n.cfg.MapTiles, MapAttribution: n.cfg.mapAttribution(),
		Logger: log,
	}
	return srv.Handler()
}

// Receivers' presence is each node's own (its broker's connections): a
// follower's broker refuses them all. So a follower asks the leader for
// it every presenceEvery; past presenceStale without an answer, every
// receiver's presence is unknown, not offline.
const (
	presenceEvery = 5 * time.Second
	presenceStale = 3 * presenceEvery
)

type leaderPresence struct {
	mu     sync.Mutex
	states map[string]loa.DeviceState
	at     time.Time
}

func (p *leaderPresence) DeviceState(id string) (loa.DeviceState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.states[id]; ok && time.Since(p.at) < presenceStale {
		return st, true
	}
	return loa.DeviceState{ID: id, Presence: loa.PresenceUnknown}, true
}

// followPresence keeps p current from the leader until ctx ends.
func (n *Node) followPresence(ctx context.Context, p *leaderPresence) {
	for {
		if states, err := n.leaderStates(ctx); err == nil {
			m := make(map[string]loa.DeviceState, len(states))
			for _, st := range states {
				m[st.ID] = st
			}
			p.mu.Lock()
			p.states, p.at = m, time.Now()
			p.mu.Unlock()
		} else if ctx.Err() == nil {
			n.log.Debug("receivers' presence not read from the leader", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(presenceEvery):
		}
	}
}

// presenceWire is one receiver's presence as the leader sends it to
// followers: what the console shows, without telemetry.
type presenceWire struct {
	ID          string    `json:"id"`
	Presence    string    `json:"p"`
	OnlineSince time.Time `json:"s,omitzero"`
	LastSeen    time.Time `json:"l,omitzero"`
}

func (n *Node) leaderStates(ctx context.Context) ([]loa.DeviceState, error) {
	leader, ok := n.otherLeader()
	if !ok {
		return nil, errors.New("no leader known")
	}
	rctx, cancel := context.WithTimeout(ctx, presenceEvery)
	defer cancel()
	var wire []presenceWire
	if err := n.clusterCall(rctx, leader, http.MethodGet, "/cluster/v1/presence", nil, &wire); err != nil {
		return nil, err
	}
	out := make([]loa.DeviceState, len(wire))
	for i, w := range wire {
		out[i] = loa.DeviceState{ID: w.ID, Presence: w.Presence, Online: w.Presence == loa.PresenceOnline, OnlineSince: w.OnlineSince, LastSeen: w.LastSeen}
	}
	return out, nil
}

// servePresence answers a follower's GET /cluster/v1/presence on the
// leader.
func (n *Node) servePresence(w http.ResponseWriter, r *http.Request) {
	m := n.Main()
	if m == nil || m.Fleet == nil {
		api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE, "node %s does not lead the cluster", n.self.ID))
		return
	}
	states := m.Fleet.States()
	wire := make([]presenceWire, len(states))
	for i, st := range states {
		wire[i] = presenceWire{ID: st.ID, Presence: st.Presence, OnlineSince: st.OnlineSince, LastSeen: st.LastSeen}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(wire)
}

// leaderProxy sends a request to the leader's API and, for a change,
// answers once this node has applied it.
func (n *Node) leaderProxy() http.Handler {
	type target struct{ id, api string }
	type targetKey struct{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(target)
			u, _ := url.Parse(t.api)
			pr.SetURL(u)
			pr.SetXForwarded()
			secret, _ := n.DB.ClusterSecret(pr.In.Context())
			forwardClientCert(pr.Out, pr.In, secret)
		},
		Transport:     n.blobClient().Transport, // nil: the default
		FlushInterval: -1,                       // event streams pass through as they come
		ModifyResponse: func(res *http.Response) error {
			if v := res.Header.Get(appliedHeader); v != "" {
				res.Header.Del(appliedHeader)
				if idx, err := strconv.ParseUint(v, 10, 64); err == nil {
					n.waitApplied(res.Request.Context(), idx)
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client left
			}
			t := r.Context().Value(targetKey{}).(target)
			w.Header().Set("Retry-After", "2")
			api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE,
				"node %s does not lead the cluster and could not reach the leader, node %s at %s: %v", n.cfg.Cluster.NodeID, t.id, t.api, err))
		},
		ErrorLog: slog.NewLogLogger(n.log.With("component", "proxy").Handler(), slog.LevelDebug),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leader, known := n.otherLeader()
		if !known {
			w.Header().Set("Retry-After", "2")
			api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE, "node %s does not lead the cluster and no leader is known yet (an election may be under way); try again shortly", n.cfg.Cluster.NodeID))
			return
		}
		ctx := r.Context()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// A change in flight completes even if this node's role
			// changes meanwhile (its server's base context is cancelled
			// then, which ends streams and reads at once).
			ctx = context.WithoutCancel(ctx)
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, targetKey{}, target{leader.ID, leader.API})))
	})
}

// waitApplied waits until this node has applied entry idx, at most
// followerReadWait.
func (n *Node) waitApplied(ctx context.Context, idx uint64) {
	deadline := time.Now().Add(followerReadWait)
	for n.Raft.AppliedIndex() < idx && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// markApplied sets appliedHeader on the leader's answers to changes:
// written after the change was applied here, read by the follower that
// proxied it.
func (n *Node) markApplied(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&appliedWriter{ResponseWriter: w, applied: n.Raft.AppliedIndex}, r)
	})
}

type appliedWriter struct {
	http.ResponseWriter
	applied func() uint64
	once    sync.Once
}

func (w *appliedWriter) mark() {
	w.once.Do(func() { w.Header().Set(appliedHeader, strconv.FormatUint(w.applied(), 10)) })
}

func (w *appliedWriter) WriteHeader(code int) {
	w.mark()
	w.ResponseWriter.WriteHeader(code)
}

func (w *appliedWriter) Write(b []byte) (int, error) {
	w.mark()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *appliedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// storedAlarms is the alarm service of a follower: the alarms in its
// store, which the leader's writes keep current, watched by polling.
type storedAlarms struct {
	db interface {
		Alarms(ctx context.Context, f loa.AlarmFilter) ([]loa.Alarm, error)
	}
	every time.Duration
}

func (s *storedAlarms) Alarms(ctx context.Context, f loa.AlarmFilter) ([]loa.Alarm, error) {
	return s.db.Alarms(ctx, f)
}

// WatchAlarms returns the active alarms and, every s.every, what changed
// among them: new or updated ones raised, gone ones cleared.
func (s *storedAlarms) WatchAlarms(ctx context.Context) ([]loa.Alarm, <-chan loa.AlarmChange, error) {
	active, err := s.db.Alarms(ctx, loa.AlarmFilter{Active: true})
	if err != nil {
		return nil, nil, fmt.Errorf("alarms: %w", err)
	}
	ch := make(chan loa.AlarmChange, 64)
	go func() {
		defer close(ch)
		last := alarmsByID(active)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := s.db.Alarms(ctx, loa.AlarmFilter{Active: true})
			if err != nil {
				continue
			}
			cur := alarmsByID(now)
			var changes []loa.AlarmChange
			for id, a := range cur {
				if b, ok := last[id]; !ok || !sameAlarm(a, b) {
					changes = append(changes, loa.AlarmChange{Event: loa.AlarmRaised, Alarm: a})
				}
			}
			for id, a := range last {
				if _, ok := cur[id]; !ok {
					changes = append(changes, loa.AlarmChange{Event: loa.AlarmCleared, Alarm: a})
				}
			}
			for _, c := range changes {
				select {
				case ch <- c:
				default:
					return // too far behind: closed, the watcher watches again
				}
			}
			last = cur
		}
	}()
	return active, ch, nil
}

func alarmsByID(list []loa.Alarm) map[string]loa.Alarm {
	m := make(map[string]loa.Alarm, len(list))
	for _, a := range list {
		m[a.ID] = a
	}
	return m
}

func sameAlarm(a, b loa.Alarm) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A cluster without a quorum has no leader: nothing is broadcast,
// scheduled or changed, and no node can write an alarm. Each node notes
// how long it saw no leader; when it sees one again after longer than an
// election (ClusterConfig.NoQuorumAfter), it tells the leader, which raises no_quorum
// with the period and clears it at once: the notification rules tell
// staff that the station was off air.
const DefaultNoQuorumAfter = 10 * time.Second

func (n *Node) noQuorumAfter() time.Duration {
	if d := n.cfg.Cluster.NoQuorumAfter; d > 0 {
		return d
	}
	return DefaultNoQuorumAfter
}

type leaderless struct {
	mu    sync.Mutex
	since time.Time // when this node last saw no leader; zero: it sees one
}

// watchLeaderless follows the leader this node knows until ctx ends.
func (n *Node) watchLeaderless(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, _ := n.Raft.Leader()
		now := time.Now()
		n.noLeader.mu.Lock()
		since := n.noLeader.since
		switch {
		case id == "" && since.IsZero():
			n.noLeader.since = now
		case id != "":
			n.noLeader.since = time.Time{}
		}
		n.noLeader.mu.Unlock()
		if id != "" && !since.IsZero() && now.Sub(since) >= n.noQuorumAfter() {
			go n.reportLeaderless(ctx, since, now)
		}
	}
}

// leaderlessReport is a node's account of a period without a leader.
type leaderlessReport struct {
	Node string    `json:"node"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// reportLeaderless tells the leader (this node or another) of a period
// without one, trying for a minute.
func (n *Node) reportLeaderless(ctx context.Context, from, to time.Time) {
	rep := leaderlessReport{Node: n.self.ID, From: from.UTC(), To: to.UTC()}
	for try := 0; try < 30 && ctx.Err() == nil; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
		if m := n.Main(); m != nil {
			n.raiseNoQuorum(m, rep)
			return
		}
		leader, ok := n.otherLeader()
		if !ok {
			continue
		}
		if n.clusterCall(ctx, leader, http.MethodPost, "/cluster/v1/leaderless", rep, nil) == nil {
			return
		}
	}
	n.log.Warn("a period without a leader could not be reported to one", "from", from, "to", to)
}

// serveLeaderless takes a node's report on the leader.
func (n *Node) serveLeaderless(w http.ResponseWriter, r *http.Request) {
	var rep leaderlessReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&rep); err != nil || rep.From.IsZero() || rep.To.Before(rep.From) {
		api.WriteError(w, r, loa.Errorf(loa.EINVALID, "want {node, from, to} with from ≤ to"))
		return
	}
	m := n.Main()
	if m == nil {
		api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE, "node %s does not lead the cluster", n.self.ID))
		return
	}
	n.raiseNoQuorum(m, rep)
	w.WriteHeader(http.StatusNoContent)
}

// raiseNoQuorum raises and clears no_quorum for rep, once for periods
// that overlap (every node that saw it reports it).
func (n *Node) raiseNoQuorum(m *Main, rep leaderlessReport) {
	n.noLeader.mu.Lock()
	if !rep.From.After(n.noQuorumTo) {
		n.noLeader.mu.Unlock()
		return
	}
	n.noQuorumTo = rep.To
	n.noLeader.mu.Unlock()
	if m.Alarms == nil {
		return
	}
	d := rep.To.Sub(rep.From).Round(time.Second)
	zone, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		zone = time.UTC
	}
	m.Alarms.RaiseStation(loa.AlarmNoQuorum, loa.SeverityCritical, d.Seconds(), n.noQuorumAfter().Seconds(), fmt.Sprintf(
		"controller cluster: no leader for %s, from %s to %s (seen by node %s): a quorum of nodes did not answer each other; nothing was broadcast, scheduled or changed meanwhile",
		d, rep.From.In(zone).Format("02/01/2006 15:04:05"), rep.To.In(zone).Format("15:04:05"), rep.Node))
	m.Alarms.ClearStation(loa.AlarmNoQuorum, "node "+n.self.ID+" leads again")
}

// A national controller authenticates to a province by its TLS client
// certificate (docs/national.md); a follower that passes its push on
// ends that TLS session, so it hands the certificate to the leader in a
// header, vouched for by the cluster secret. The handshake on the
// follower proved the client holds the certificate's key.
const (
	forwardedCertHeader = "X-Loa-Client-Cert"  // base64 DER
	clusterAuthHeader   = "X-Loa-Cluster-Auth" // the cluster secret
)

// forwardClientCert sets the headers on out for in's client certificate,
// and drops any a client sent itself.
func forwardClientCert(out, in *http.Request, secret string) {
	out.Header.Del(forwardedCertHeader)
	out.Header.Del(clusterAuthHeader)
	if secret == "" || in.TLS == nil || len(in.TLS.PeerCertificates) == 0 {
		return
	}
	out.Header.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(in.TLS.PeerCertificates[0].Raw))
	out.Header.Set(clusterAuthHeader, secret)
}

// acceptForwardedCert, on the leader, takes a follower's forwarded client
// certificate as the request's own when the cluster secret vouches for
// it; otherwise the headers are dropped and count for nothing.
func (n *Node) acceptForwardedCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, auth := r.Header.Get(forwardedCertHeader), r.Header.Get(clusterAuthHeader)
		if raw == "" && auth == "" {
			next.ServeHTTP(w, r)
			return
		}
		r = r.Clone(r.Context())
		r.Header.Del(forwardedCertHeader)
		r.Header.Del(clusterAuthHeader)
		secret, err := n.DB.ClusterSecret(r.Context())
		if err == nil && secret != "" && subtle.ConstantTimeCompare([]byte(auth), []byte(secret)) == 1 {
			if der, err := base64.StdEncoding.DecodeString(raw); err == nil {
				if cert, err := x509.ParseCertificate(der); err == nil {
					r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert}}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// otherLeader is the leader when it is another node with an API address.
func (n *Node) otherLeader() (ClusterPeer, bool) {
	id, _ := n.Raft.Leader()
	p, ok := n.cfg.Cluster.peer(id)
	return p, ok && p.API != "" && id != n.self.ID
}

// clusterCall sends a node-to-node request (the cluster secret as its
// bearer) to peer p: body as JSON when not nil, a 2xx answer decoded
// into out when not nil.
func (n *Node) clusterCall(ctx context.Context, p ClusterPeer, method, path string, body, out any) error {
	secret, err := n.DB.ClusterSecret(ctx)
	if err != nil || secret == "" {
		return fmt.Errorf("no cluster secret yet: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.API+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := n.blobClient().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d", p.ID, path, res.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", p.ID, path, err)
	}
	return nil
}
