package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
