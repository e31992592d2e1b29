package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// The topics of GET /api/v1/events. A console tab opens one stream with
// the topics its screens show: browsers allow six HTTP/1.1 connections
// per origin, so one stream per topic would starve the rest of the page.
const (
	TopicSessions  = "sessions"  // sessions playing now
	TopicDevices   = "devices"   // receivers' presence and the online/offline counts
	TopicAlarms    = "alarms"    // active alarms, raised and cleared
	TopicAlerts    = "alerts"    // recent alerts' state and delivery totals
	TopicPlayLog   = "playlog"   // new broadcast log entries
	TopicDrafts    = "drafts"    // pending drafts the caller may decide, and its own
	TopicBulletins = "bulletins" // bulletins of the caller's communes, with their tracking
	TopicRelays    = "relays"    // relays with their live state (source, level, URL, failovers)
)

var eventTopics = []string{TopicSessions, TopicDevices, TopicAlarms, TopicAlerts, TopicPlayLog, TopicDrafts, TopicBulletins, TopicRelays}

// DefaultEventInterval is how often a stream compares what its caller may
// see with what it last sent, when Server.EventInterval is zero. The
// sessions, devices, alerts and play log have no change feed of their
// own; alarms are pushed as they happen.
const DefaultEventInterval = time.Second

// Bounds of what one stream follows: the newest alerts and log entries.
const (
	eventAlerts  = 20
	eventPlayLog = 20
)

// eventChange is the data of every event: ids and what changed. reset
// says the client should drop what it holds for the topic first (the
// stream's first event of a topic, after a reconnect too).
type eventChange struct {
	Reset   bool               `json:"reset,omitempty"`
	Changed []any              `json:"changed,omitempty"`
	Removed []string           `json:"removed,omitempty"`
	Counts  *deviceCounts      `json:"counts,omitempty"`  // devices only
	Entries []loa.PlayLogEntry `json:"entries,omitempty"` // playlog only: new entries, newest first
}

// deviceCounts are the receivers in the caller's scope by presence.
type deviceCounts struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// devicePresence is what the devices topic carries of one receiver.
type devicePresence struct {
	ID       string `json:"id"`
	AreaID   string `json:"area_id"`
	Online   bool   `json:"online"`
	Presence string `json:"presence,omitempty"`
}

// alertSummary is what the alerts topic carries of one alert: no
// per-receiver report, which GET /alerts/{id} and its own stream give.
type alertSummary struct {
	ID        string          `json:"id"`
	Title     string          `json:"title"`
	Level     string          `json:"level"`
	State     string          `json:"state"`
	Test      bool            `json:"test,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Totals    loa.AlertTotals `json:"totals"`
}

// parseTopics reads ?topics=a,b; none means every topic.
func parseTopics(raw string) ([]string, error) {
	if strings.TrimSpace(raw) == "" {
		return eventTopics, nil
	}
	var out []string
	for _, t := range strings.Split(raw, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(eventTopics, t) {
			return nil, loa.Errorf(loa.EINVALID, "topics: unknown topic %s (known: %s)", strconv.Quote(t), strings.Join(eventTopics, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// events answers GET /api/v1/events?topics= with server-sent events, one
// event per topic named by it, carrying only what changed since the last
// one and only what the caller may see. The first event of each topic
// has reset set and carries the current state. The caller's credentials
// are checked again on every round: a revoked token or ended sign-in
// ends the stream (the browser reconnects and is refused).
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *call) error {
	topics, err := parseTopics(r.URL.Query().Get("topics"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	var alarms <-chan loa.AlarmChange
	var active []loa.Alarm
	if slices.Contains(topics, TopicAlarms) && s.Alarms != nil {
		if active, alarms, err = s.Alarms.WatchAlarms(ctx); err != nil {
			return err
		}
	}
	sse := startSSE(w)
	interval := s.EventInterval
	if interval <= 0 {
		interval = DefaultEventInterval
	}
	es := &eventState{s: s, interval: interval, topics: topics, last: map[string]map[string][]byte{}, seenLog: map[string]bool{}}
	if alarms != nil {
		ch := eventChange{Reset: true}
		for i := range active {
			if alarmVisible(c, &active[i]) {
				ch.Changed = append(ch.Changed, active[i])
			}
		}
		if sse.send(TopicAlarms, ch) != nil {
			return nil
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ping := time.NewTicker(sseKeepAlive)
	defer ping.Stop()
	rc := c
	for due := true; ; {
		if due {
			// A fresh call each round: areas created since are in scope.
			fresh, err := s.authenticate(r)
			if err != nil {
				return nil
			}
			fresh.ctx = ctx
			rc = fresh
			if err := es.round(ctx, rc, sse); err != nil {
				if ctx.Err() == nil {
					s.logger().LogAttrs(ctx, slog.LevelInfo, "event stream ended", slog.Any("err", err))
				}
				return nil
			}
		}
		due = false
		select {
		case <-ctx.Done():
			return nil
		case ch, ok := <-alarms:
			if !ok {
				return nil
			}
			if alarmVisible(rc, &ch.Alarm) {
				ev := eventChange{Changed: []any{ch.Alarm}}
				if ch.Event == loa.AlarmCleared {
					ev = eventChange{Removed: []string{ch.Alarm.ID}}
				}
				if sse.send(TopicAlarms, ev) != nil {
					return nil
				}
			}
		case <-tick.C:
			due = true
		case <-ping.C:
			if sse.ping() != nil {
				return nil
			}
		}
	}
}

// alarmVisible reports whether the caller's scope holds the alarm's area.
func alarmVisible(c *call, a *loa.Alarm) bool {
	if _, err := c.areaList(); err != nil {
		return false
	}
	aq := alarmQuery{}
	return aq.visible(c, a)
}

// eventReads shares the lists the event streams read: every open tab
// compares its own scope's view with what it sent, but the station's
// lists are read once per interval however many tabs are open. What it
// holds is read-only.
type eventReads struct {
	mu    sync.Mutex
	reads map[string]eventRead
}

type eventRead struct {
	at time.Time
	v  any
}

// get returns the topic's list read within the last half interval, or
// reads it with read.
func (er *eventReads) get(topic string, fresh time.Duration, read func() (any, error)) (any, error) {
	er.mu.Lock()
	defer er.mu.Unlock()
	if r, ok := er.reads[topic]; ok && time.Since(r.at) < fresh {
		return r.v, nil
	}
	v, err := read()
	if err != nil {
		return nil, err
	}
	if er.reads == nil {
		er.reads = map[string]eventRead{}
	}
	er.reads[topic] = eventRead{at: time.Now(), v: v}
	return v, nil
}

// shared reads a topic's list through the Server's eventReads.
func shared[T any](es *eventState, topic string, read func() (T, error)) (T, error) {
	v, err := es.s.eventReads.get(topic, es.interval/2, func() (any, error) { return read() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// eventState is what one stream last sent, per topic and id.
type eventState struct {
	s        *Server
	interval time.Duration
	topics   []string
	last     map[string]map[string][]byte // topic → id → JSON sent
	counts   *deviceCounts
	seenLog  map[string]bool // the play log entries of the last round
	// logStarted: the play log's first event (reset) was sent.
	logStarted bool
}

// round sends each polled topic's changes since the last round.
func (es *eventState) round(ctx context.Context, c *call, sse *sseStream) error {
	for _, t := range es.topics {
		var ch eventChange
		var err error
		switch t {
		case TopicSessions:
			ch, err = es.sessions(ctx, c)
		case TopicDevices:
			ch, err = es.devices(ctx, c)
		case TopicAlerts:
			ch, err = es.alerts(ctx, c)
		case TopicPlayLog:
			ch, err = es.playLog(ctx, c)
		case TopicDrafts:
			ch, err = es.drafts(ctx, c)
		case TopicBulletins:
			ch, err = es.bulletins(ctx, c)
		case TopicRelays:
			var ids []string
			var items map[string]any
			if ids, items, err = es.s.relayViews(c); err == nil {
				ch, err = es.diff(TopicRelays, ids, items)
			}
		default:
			continue
		}
		if err != nil {
			if code := loa.ErrorCode(err); code == loa.EUNAVAILABLE {
				continue // the service is not configured: the topic stays quiet
			}
			return err
		}
		if ch.Reset || len(ch.Changed) > 0 || len(ch.Removed) > 0 || ch.Counts != nil || len(ch.Entries) > 0 {
			if err := sse.send(t, ch); err != nil {
				return err
			}
		}
	}
	return nil
}

// diff compares items (id → value) with what was last sent for topic and
// records them as sent.
func (es *eventState) diff(topic string, ids []string, items map[string]any) (eventChange, error) {
	prev, seen := es.last[topic]
	ch := eventChange{Reset: !seen}
	next := make(map[string][]byte, len(items))
	for _, id := range ids {
		b, err := json.Marshal(items[id])
		if err != nil {
			return ch, err
		}
		next[id] = b
		if old, ok := prev[id]; !ok || !bytes.Equal(old, b) {
			ch.Changed = append(ch.Changed, items[id])
		}
	}
	for id := range prev {
		if _, ok := next[id]; !ok {
			ch.Removed = append(ch.Removed, id)
		}
	}
	slices.Sort(ch.Removed)
	es.last[topic] = next
	return ch, nil
}

// sessions: the sessions playing now in the caller's scope; one that ends
// is removed.
func (es *eventState) sessions(ctx context.Context, c *call) (eventChange, error) {
	if es.s.Sessions == nil {
		return eventChange{}, errUnavailable("session")
	}
	list, err := shared(es, TopicSessions, func() ([]*loa.Session, error) { return es.s.Sessions.Sessions(ctx) })
	if err != nil {
		return eventChange{}, err
	}
	var ids []string
	items := map[string]any{}
	for _, sess := range list {
		if sess.State != loa.SessionPlaying {
			continue
		}
		if ok, err := c.sessionInScope(sess); err != nil {
			return eventChange{}, err
		} else if ok {
			ids = append(ids, sess.ID)
			items[sess.ID] = viewSession(sess)
		}
	}
	return es.diff(TopicSessions, ids, items)
}

// devices: the counts when they change and the receivers whose presence
// changed. The first event carries the counts only: a screen listing
// receivers reads its page and patches it from the changes.
func (es *eventState) devices(ctx context.Context, c *call) (eventChange, error) {
	if es.s.Devices == nil {
		return eventChange{}, errUnavailable("device")
	}
	if c.scoped() {
		if _, err := c.areaList(); err != nil {
			return eventChange{}, err
		}
	}
	list, err := shared(es, TopicDevices, func() ([]*loa.Device, error) { return es.s.Devices.Devices(ctx) })
	if err != nil {
		return eventChange{}, err
	}
	var ids []string
	items := map[string]any{}
	counts := deviceCounts{}
	for _, d := range list {
		if ok, err := c.areaInScope(d.AreaID); err != nil {
			return eventChange{}, err
		} else if !ok {
			continue
		}
		p := devicePresence{ID: d.ID, AreaID: d.AreaID}
		if es.s.Presence != nil {
			if st, ok := es.s.Presence.DeviceState(d.ID); ok {
				p.Online, p.Presence = st.Online, st.Presence
			}
		}
		counts.Total++
		if p.Online {
			counts.Online++
		} else {
			counts.Offline++
		}
		ids = append(ids, d.ID)
		items[d.ID] = p
	}
	first := es.counts == nil
	ch, err := es.diff(TopicDevices, ids, items)
	if err != nil {
		return ch, err
	}
	if first {
		ch.Changed, ch.Removed = nil, nil
	}
	if first || *es.counts != counts {
		ch.Counts = &counts
	}
	es.counts = &counts
	return ch, nil
}

// alerts: the newest alerts in scope with their totals.
func (es *eventState) alerts(ctx context.Context, c *call) (eventChange, error) {
	if es.s.Alerts == nil {
		return eventChange{}, errUnavailable("alert")
	}
	list, err := shared(es, TopicAlerts, func() ([]*loa.Alert, error) { return es.s.Alerts.Alerts(ctx) })
	if err != nil {
		return eventChange{}, err
	}
	var ids []string
	items := map[string]any{}
	for _, a := range list {
		if len(ids) == eventAlerts {
			break
		}
		if o, err := c.targetsInScope(a.Targets); err != nil {
			return eventChange{}, err
		} else if o != "" {
			continue
		}
		v, err := c.view(a)
		if err != nil {
			return eventChange{}, err
		}
		ids = append(ids, a.ID)
		items[a.ID] = alertSummary{ID: a.ID, Title: a.Title, Level: a.Level, State: a.State, Test: a.Test,
			CreatedAt: a.CreatedAt, Totals: v.Totals.All}
	}
	ch, err := es.diff(TopicAlerts, ids, items)
	ch.Removed = nil // an alert leaving the newest few is not gone
	return ch, err
}

// playLog: entries not sent before, newest first. It follows the newest
// eventPlayLog entries of each round: a burst of more within one
// interval sends the newest of them.
func (es *eventState) playLog(ctx context.Context, c *call) (eventChange, error) {
	if es.s.PlayLog == nil {
		return eventChange{}, errUnavailable("play log")
	}
	f := loa.PlayLogFilter{Limit: eventPlayLog, Area: c.tok.AreaID}
	entries, err := es.s.PlayLog.PlayLog(ctx, f)
	if err != nil {
		return eventChange{}, err
	}
	ch := eventChange{Reset: !es.logStarted}
	es.logStarted = true
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		e, ok, err := c.playLogEntryInScope(e)
		if err != nil {
			return ch, err
		}
		if !ok {
			continue
		}
		key := e.At.Format(time.RFC3339Nano) + "|" + e.Event + "|" + e.SessionID + "|" + strings.Join(e.Devices, ",")
		seen[key] = true
		if !es.seenLog[key] {
			ch.Entries = append(ch.Entries, e)
		}
	}
	es.seenLog = seen
	return ch, nil
}

// drafts: the pending drafts the caller may see (those it may decide,
// and its own); a decided or withdrawn one is removed.
func (es *eventState) drafts(ctx context.Context, c *call) (eventChange, error) {
	if es.s.Drafts == nil {
		return eventChange{}, errUnavailable("draft")
	}
	list, err := shared(es, TopicDrafts, func() ([]*loa.Draft, error) { return es.s.Drafts.Drafts(ctx) })
	if err != nil {
		return eventChange{}, err
	}
	var ids []string
	items := map[string]any{}
	for _, d := range list {
		if d.State != loa.DraftPending {
			continue
		}
		if ok, err := c.draftVisible(d); err != nil {
			return eventChange{}, err
		} else if ok {
			ids = append(ids, d.ID)
			items[d.ID] = d
		}
	}
	return es.diff(TopicDrafts, ids, items)
}

// eventBulletins bounds the bulletins the topic follows: the newest.
const eventBulletins = 50

// bulletins: the newest bulletins of the caller's communes, each as the
// caller sees it (its entries, totals); a tracking change is a change.
func (es *eventState) bulletins(ctx context.Context, c *call) (eventChange, error) {
	if es.s.Bulletins == nil {
		return eventChange{}, errUnavailable("bulletin")
	}
	list, err := shared(es, TopicBulletins, func() ([]*loa.Bulletin, error) { return es.s.Bulletins.Bulletins(ctx) })
	if err != nil {
		return eventChange{}, err
	}
	var ids []string
	items := map[string]any{}
	for _, b := range list {
		if len(ids) == eventBulletins {
			break
		}
		v, ok, err := c.bulletinView(b)
		if err != nil {
			return eventChange{}, err
		} else if ok {
			ids = append(ids, b.ID)
			items[b.ID] = v
		}
	}
	return es.diff(TopicBulletins, ids, items)
}
