package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// Alarm list sizes.
const (
	defaultAlarmLimit = 500
	maxAlarmLimit     = 10000
)

// alarmQuery is the parsed ?area=&active=&kind= of the alarm routes.
type alarmQuery struct {
	filter loa.AlarmFilter
	area   string // only alarms of devices within this area's subtree
	limit  int
}

// parseAlarmQuery checks the query. A scoped caller's area must lie within
// its scope; unknown areas are not found.
func parseAlarmQuery(r *http.Request, c *call) (alarmQuery, error) {
	q := r.URL.Query()
	aq := alarmQuery{limit: defaultAlarmLimit}
	switch v := q.Get("active"); v {
	case "", "false":
	case "true":
		aq.filter.Active = true
	default:
		return aq, loa.Errorf(loa.EINVALID, "active: want true or false, not %s", strconv.Quote(v))
	}
	if k := q.Get("kind"); k != "" {
		if !loa.ValidAlarmKind(k) {
			return aq, loa.Errorf(loa.EINVALID, "kind: %s is not one of %v", strconv.Quote(k), loa.AlarmKinds)
		}
		aq.filter.Kind = k
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxAlarmLimit {
			return aq, loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxAlarmLimit)
		}
		aq.limit = n
	}
	if aq.area = q.Get("area"); aq.area != "" {
		if err := checkAreaParam(c, aq.area); err != nil {
			return aq, err
		}
	}
	if _, err := c.areaList(); err != nil {
		return aq, err
	}
	return aq, nil
}

// checkAreaParam refuses an area that does not exist or is outside the
// caller's scope (not found either way, so existence does not leak).
func checkAreaParam(c *call, area string) error {
	if err := loa.ValidateID("area", area); err != nil {
		return err
	}
	if _, err := c.areaList(); err != nil {
		return err
	}
	if ok, err := c.areaInScope(area); err != nil {
		return err
	} else if !ok || c.tree[area] == nil {
		return loa.Errorf(loa.ENOTFOUND, "area: %s not found", strconv.Quote(area))
	}
	return nil
}

// visible reports whether the caller may see al and it matches the query.
// Alarms of devices in no known area are seen only by unscoped callers.
func (aq *alarmQuery) visible(c *call, al *loa.Alarm) bool {
	if aq.filter.Active && !al.Active() || aq.filter.Kind != "" && al.Kind != aq.filter.Kind {
		return false
	}
	if c.scoped() && !c.tree.Within(al.Area, c.tok.AreaID) {
		return false
	}
	return aq.area == "" || c.tree.Within(al.Area, aq.area)
}

// listAlarms answers GET /api/v1/alarms?area=&active=true|false&kind=&limit=,
// newest first. active=false lists only cleared alarms.
func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Alarms == nil {
		return errUnavailable("alarm")
	}
	aq, err := parseAlarmQuery(r, c)
	if err != nil {
		return err
	}
	onlyCleared := r.URL.Query().Get("active") == "false"
	list, err := s.Alarms.Alarms(r.Context(), aq.filter)
	if err != nil {
		return err
	}
	out := make([]loa.Alarm, 0, min(len(list), aq.limit))
	for i := range list {
		if len(out) == aq.limit {
			break
		}
		if aq.visible(c, &list[i]) && (!onlyCleared || !list[i].Active()) {
			out = append(out, list[i])
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// alarmStream answers GET /api/v1/alarms/stream?area=&kind= with
// server-sent events: a "raised" event for every active alarm first, then
// "raised" and "cleared" as they happen, each with the alarm as data. The
// stream ends when the client goes, or when it fell too far behind (the
// client reconnects and gets the active set again).
func (s *Server) alarmStream(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Alarms == nil {
		return errUnavailable("alarm")
	}
	aq, err := parseAlarmQuery(r, c)
	if err != nil {
		return err
	}
	aq.filter.Active = false // the stream carries clears too
	active, changes, err := s.Alarms.WatchAlarms(r.Context())
	if err != nil {
		return err
	}
	sse := startSSE(w)
	for i := range active {
		if aq.visible(c, &active[i]) {
			if err := sse.send(loa.AlarmRaised, active[i]); err != nil {
				return nil // the client went
			}
		}
	}
	ping := time.NewTicker(sseKeepAlive)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case ch, ok := <-changes:
			if !ok {
				return nil
			}
			if aq.visible(c, &ch.Alarm) {
				if err := sse.send(ch.Event, ch.Alarm); err != nil {
					return nil
				}
			}
		case <-ping.C:
			if err := sse.ping(); err != nil {
				return nil
			}
		}
	}
}

// queryToken lets an event stream authenticate with ?access_token=: the
// browser's EventSource cannot send an Authorization header. Only routes
// wrapped with it accept the parameter, and the request log records the
// path without the query, so the secret is not logged.
func queryToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("access_token"); tok != "" && r.Header.Get("Authorization") == "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		next.ServeHTTP(w, r)
	})
}
