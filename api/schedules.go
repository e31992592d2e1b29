package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// Limits of GET /api/v1/schedules/{id}/next.
const (
	defaultNextN = 10
	maxNextN     = 100
)

// scheduleRequest is the body of POST /api/v1/schedules and PUT
// /api/v1/schedules/{id}: a loa.Schedule with max_wait as a Go duration
// and without created_by, which the server sets.
type scheduleRequest struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Rule       loa.Rule       `json:"rule"`
	Exceptions loa.Exceptions `json:"exceptions"`
	Content    loa.Content    `json:"content"`
	Targets    loa.Targets    `json:"targets"`
	Priority   *int           `json:"priority"`    // 0–255; nil = DefaultPriority
	Overrun    string         `json:"overrun"`     // interrupt (default) or wait
	MaxWait    string         `json:"max_wait"`    // a Go duration, "10m"; "" = none
	MaxWaitNs  *int64         `json:"max_wait_ns"` // or nanoseconds, as answers also carry it
	Enabled    *bool          `json:"enabled"`     // nil: true on create, unchanged on replace
}

// scheduleView is a schedule as the API answers it: max_wait both as the
// Go duration requests send and, as before, in nanoseconds.
type scheduleView struct {
	*loa.Schedule
	MaxWait string `json:"max_wait,omitempty"`
}

func viewSchedule(sc *loa.Schedule) scheduleView {
	return scheduleView{Schedule: sc, MaxWait: durationOut(sc.MaxWait)}
}

// parseScheduleRequest decodes a schedule body. It checks the JSON shape,
// the priority range and the duration; the rule itself is the
// ScheduleService's to validate. Every failure is EINVALID naming the
// field.
func parseScheduleRequest(r *http.Request) (*loa.Schedule, *bool, error) {
	var req scheduleRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, nil, err
	}
	sc := &loa.Schedule{
		ID: req.ID, Name: req.Name, Rule: req.Rule, Exceptions: req.Exceptions,
		Content: req.Content, Targets: req.Targets, Priority: DefaultPriority,
		Overrun: req.Overrun,
	}
	if req.Priority != nil {
		if *req.Priority < 0 || *req.Priority > 255 {
			return nil, nil, loa.Errorf(loa.EINVALID, "priority: must be 0–255, not %d", *req.Priority)
		}
		sc.Priority = loa.Priority(*req.Priority)
	}
	if d, given, err := durationIn("max_wait", "max_wait_ns", req.MaxWait, req.MaxWaitNs, "10m"); err != nil {
		return nil, nil, err
	} else if given {
		if d < 0 {
			return nil, nil, loa.Errorf(loa.EINVALID, "max_wait: must not be negative")
		}
		sc.MaxWait = d
	}
	return sc, req.Enabled, nil
}

// mayUseBand refuses the emergency band to all but admin and province
// tokens, as for sessions.
func (c *call) mayUseBand(p loa.Priority) error {
	if p.Emergency() && c.tok.Role != loa.RoleAdmin && c.tok.Role != loa.RoleProvince {
		return loa.Errorf(loa.EFORBIDDEN, "priority: the emergency band (%d–255) needs an admin or province token", loa.PriorityEmergency)
	}
	return nil
}

// targetsAllowed refuses targets outside the caller's scope, naming the
// first such target.
func (c *call) targetsAllowed(t loa.Targets) error {
	out, err := c.targetsInScope(t)
	if err != nil {
		return err
	}
	if out != "" {
		return loa.Errorf(loa.EFORBIDDEN, "%s is outside your scope (%s)", out, c.tok.AreaID)
	}
	return nil
}

// targetsVisible reports whether every target of t is within the caller's
// scope, which is what it takes to see a schedule or an occurrence.
func (c *call) targetsVisible(t loa.Targets) (bool, error) {
	out, err := c.targetsInScope(t)
	return out == "" && err == nil, err
}

// schedule returns schedule id if the caller may see it, else ENOTFOUND.
func (s *Server) schedule(c *call, id string) (*loa.Schedule, error) {
	if s.Schedules == nil {
		return nil, errUnavailable("schedule")
	}
	sc, err := s.Schedules.Schedule(c.ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := c.targetsVisible(sc.Targets); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
	}
	return sc, nil
}

// scheduleToChange returns schedule id if the caller may change it: it is
// visible, and if it is in the emergency band the caller may use that band.
func (s *Server) scheduleToChange(c *call, id string) (*loa.Schedule, error) {
	sc, err := s.schedule(c, id)
	if err != nil {
		return nil, err
	}
	if err := c.mayUseBand(sc.Priority); err != nil {
		return nil, loa.Errorf(loa.EFORBIDDEN, "priority: schedule %q is in the emergency band; changing it needs an admin or province token", id)
	}
	return sc, nil
}

// listSchedules answers the schedules whose targets all lie within the
// caller's scope.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	list, err := s.Schedules.Schedules(r.Context())
	if err != nil {
		return err
	}
	out := make([]scheduleView, 0, len(list))
	for _, sc := range list {
		ok, err := c.targetsVisible(sc.Targets)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, viewSchedule(sc))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, err := s.schedule(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSchedule(sc))
	return nil
}

// createSchedule stores a new schedule whose targets are all within the
// caller's scope. It is enabled unless the body says "enabled": false.
func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, enabled, err := parseScheduleRequest(r)
	if err != nil {
		return err
	}
	if err := c.mayUseBand(sc.Priority); err != nil {
		return err
	}
	if err := c.targetsAllowed(sc.Targets); err != nil {
		return err
	}
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	sc.Enabled = enabled == nil || *enabled
	sc.CreatedBy = c.tok.ID
	if held, err := s.holdChange(w, c, &loa.Draft{Kind: loa.DraftSchedule, Op: "create", Schedule: sc}, sc.Targets); held || err != nil {
		return err
	}
	if err := s.Schedules.CreateSchedule(r.Context(), sc); err != nil {
		return err
	}
	c.audit("schedule.create", sc.ID, scheduleDetail(sc))
	writeJSON(w, http.StatusCreated, viewSchedule(sc))
	return nil
}

// replaceSchedule replaces a schedule the caller may change with the
// body, whose id must be the path's or empty. created_by is kept, and so
// is enabled when the body leaves it out.
func (s *Server) replaceSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	sc, enabled, err := parseScheduleRequest(r)
	if err != nil {
		return err
	}
	if sc.ID != "" && sc.ID != id {
		return loa.Errorf(loa.EINVALID, "id: the body names %q but the path %q", sc.ID, id)
	}
	sc.ID = id
	if err := c.mayUseBand(sc.Priority); err != nil {
		return err
	}
	old, err := s.scheduleToChange(c, id)
	if err != nil {
		return err
	}
	if err := c.targetsAllowed(sc.Targets); err != nil {
		return err
	}
	sc.Enabled = old.Enabled
	if enabled != nil {
		sc.Enabled = *enabled
	}
	sc.CreatedBy = old.CreatedBy
	touched := loa.Targets{Areas: append(slices.Clone(old.Targets.Areas), sc.Targets.Areas...), Devices: append(slices.Clone(old.Targets.Devices), sc.Targets.Devices...)}
	if held, err := s.holdChange(w, c, &loa.Draft{Kind: loa.DraftSchedule, Op: "replace", Schedule: sc}, touched); held || err != nil {
		return err
	}
	if err := s.Schedules.UpdateSchedule(r.Context(), sc); err != nil {
		return err
	}
	c.audit("schedule.update", sc.ID, scheduleDetail(sc))
	writeJSON(w, http.StatusOK, viewSchedule(sc))
	return nil
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	sc, err := s.scheduleToChange(c, id)
	if err != nil {
		return err
	}
	if err := s.Schedules.DeleteSchedule(r.Context(), id); err != nil {
		return err
	}
	c.audit("schedule.delete", id, sc.Name)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setScheduleEnabled returns the handler of POST
// /api/v1/schedules/{id}/enable or /disable.
func (s *Server) setScheduleEnabled(enabled bool) handler {
	action := "schedule.disable"
	if enabled {
		action = "schedule.enable"
	}
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		sc, err := s.scheduleToChange(c, r.PathValue("id"))
		if err != nil {
			return err
		}
		sc.Enabled = enabled
		if err := s.Schedules.UpdateSchedule(r.Context(), sc); err != nil {
			return err
		}
		c.audit(action, sc.ID, "")
		writeJSON(w, http.StatusOK, viewSchedule(sc))
		return nil
	}
}

// nextOccurrences answers the next ?n= occurrences (1–100, default 10) of
// a schedule the caller may see after ?after= (RFC 3339, default now).
func (s *Server) nextOccurrences(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	n := defaultNextN
	if raw := q.Get("n"); raw != "" {
		v, err := strconv.Atoi(raw)
		if err != nil || v < 1 || v > maxNextN {
			return loa.Errorf(loa.EINVALID, "n: must be an integer within 1..%d, not %s", maxNextN, strconv.Quote(raw))
		}
		n = v
	}
	after := s.now()
	if raw := q.Get("after"); raw != "" {
		t, err := parseTime("after", raw)
		if err != nil {
			return err
		}
		after = t
	}
	id := r.PathValue("id")
	if _, err := s.schedule(c, id); err != nil {
		return err
	}
	occs, err := s.Schedules.NextOccurrences(r.Context(), id, after, n)
	if err != nil {
		return err
	}
	if occs == nil {
		occs = []loa.Occurrence{}
	}
	writeJSON(w, http.StatusOK, occs)
	return nil
}

// scheduleDetail summarises a schedule for the audit log.
func scheduleDetail(sc *loa.Schedule) string {
	var b strings.Builder
	b.WriteString(sc.Rule.Kind + " " + sc.Rule.Time)
	if sc.Content.PlaylistID != "" {
		b.WriteString(", playlist " + sc.Content.PlaylistID)
	} else {
		b.WriteString(", media " + sc.Content.MediaID)
	}
	b.WriteString(", priority " + strconv.Itoa(int(sc.Priority)))
	if !sc.Enabled {
		b.WriteString(", disabled")
	}
	return b.String()
}

// parseTime parses an RFC 3339 query parameter. A '+' in a query string
// arrives as a space when the client did not escape it; that is put back.
func parseTime(param, raw string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil && strings.Contains(raw, " ") {
		t, err = time.Parse(time.RFC3339, strings.ReplaceAll(raw, " ", "+"))
	}
	if err != nil {
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: %s is not an RFC 3339 time like 2026-11-25T06:00:00+07:00", param, strconv.Quote(raw))
	}
	return t, nil
}

// parseBound parses a from or to query parameter that may name a day: a
// date (YYYY-MM-DD, in the station's zone) or an RFC 3339 time. A date is
// the start of that day, or for an end bound (to) the start of the next,
// so from=to=2026-11-25 is that whole day.
func parseBound(param, raw string, end bool) (time.Time, error) {
	if d, err := time.ParseInLocation(time.DateOnly, raw, stationZone); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := parseTime(param, raw)
	if err != nil {
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: %s is neither a date like 2026-11-25 (in %s) nor an RFC 3339 time like 2026-11-25T06:00:00+07:00",
			param, strconv.Quote(raw), loa.DefaultZone)
	}
	return t, nil
}

// conflictWindow is how far ahead POST /api/v1/schedules/conflicts looks.
const conflictWindow = 28 * 24 * time.Hour

// conflictsView is the answer of POST /api/v1/schedules/conflicts.
type conflictsView struct {
	From      time.Time              `json:"from"`
	To        time.Time              `json:"to"`
	Conflicts []loa.ScheduleConflict `json:"conflicts"`
}

// scheduleConflicts answers where a proposed schedule (a body as for
// POST /api/v1/schedules; with an existing id, that schedule's change)
// would overlap other enabled schedules in the four weeks from now, or
// from its first day if that is later. It changes nothing. Another
// schedule the caller may not see is told by its times and priority only.
func (s *Server) scheduleConflicts(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, _, err := parseScheduleRequest(r)
	if err != nil {
		return err
	}
	if err := c.mayUseBand(sc.Priority); err != nil {
		return err
	}
	if err := c.targetsAllowed(sc.Targets); err != nil {
		return err
	}
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	from := s.now()
	if first, err := time.ParseInLocation(time.DateOnly, sc.Rule.Date, stationZone); err == nil && first.After(from) {
		from = first
	}
	to := from.Add(conflictWindow)
	found, err := s.Schedules.Conflicts(r.Context(), sc, from, to)
	if err != nil {
		return err
	}
	out := conflictsView{From: from, To: to, Conflicts: make([]loa.ScheduleConflict, 0, len(found))}
	for _, cf := range found {
		if ok, err := c.targetsVisible(cf.Targets); err != nil {
			return err
		} else if !ok {
			cf.ScheduleID, cf.Name, cf.Targets = "", "", loa.Targets{}
		}
		out.Conflicts = append(out.Conflicts, cf)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
