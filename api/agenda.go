package api

import (
	"cmp"
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// maxAgendaRange bounds the window of one agenda request.
const maxAgendaRange = 31 * 24 * time.Hour

// stationZone is where ?day= and ?week= dates are read. Vietnam has kept
// UTC+7 without daylight saving since 1975, so the fixed zone stands in
// when the system has no zone database.
var stationZone = func() *time.Location {
	if loc, err := time.LoadLocation(loa.DefaultZone); err == nil {
		return loc
	}
	return time.FixedZone("ICT", 7*60*60)
}()

// now is the server's clock.
func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// agendaWindow reads the window of GET /api/v1/agenda: ?from=&to= (dates or RFC
// 3339 times), ?day=YYYY-MM-DD, or ?week=YYYY-MM-DD (a Monday), days in the
// station's zone; today when none is given.
func agendaWindow(q map[string][]string, now time.Time) (from, to time.Time, err error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	rawFrom, rawTo, day, week := get("from"), get("to"), get("day"), get("week")
	given := 0
	for _, v := range []string{rawFrom + rawTo, day, week} {
		if v != "" {
			given++
		}
	}
	if given > 1 {
		return from, to, loa.Errorf(loa.EINVALID, "from, to, day, week: give from and to, or day, or week, not several")
	}
	switch {
	case rawFrom != "" || rawTo != "":
		if rawFrom == "" || rawTo == "" {
			return from, to, loa.Errorf(loa.EINVALID, "from, to: give both")
		}
		if from, err = parseBound("from", rawFrom, false); err != nil {
			return from, to, err
		}
		if to, err = parseBound("to", rawTo, true); err != nil {
			return from, to, err
		}
		if !to.After(from) {
			return from, to, loa.Errorf(loa.EINVALID, "to: must be after from")
		}
		if to.Sub(from) > maxAgendaRange {
			return from, to, loa.Errorf(loa.EINVALID, "to: the range may span at most 31 days")
		}
		return from, to, nil
	case day != "":
		if from, err = parseDate("day", day); err != nil {
			return from, to, err
		}
		return from, from.AddDate(0, 0, 1), nil
	case week != "":
		if from, err = parseDate("week", week); err != nil {
			return from, to, err
		}
		if from.Weekday() != time.Monday {
			return from, to, loa.Errorf(loa.EINVALID, "week: %s is a %s; name the Monday the week starts on", week, from.Weekday())
		}
		return from, from.AddDate(0, 0, 7), nil
	}
	y, m, d := now.In(stationZone).Date()
	from = time.Date(y, m, d, 0, 0, 0, 0, stationZone)
	return from, from.AddDate(0, 0, 1), nil
}

// parseDate parses a YYYY-MM-DD query parameter as the start of that day
// in the station's zone.
func parseDate(param, raw string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, raw, stationZone)
	if err != nil {
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: %s is not a date like 2026-11-25", param, strconv.Quote(raw))
	}
	return t, nil
}

// agenda answers the occurrences of every enabled schedule in the window
// whose targets all lie within the caller's scope.
func (s *Server) agenda(w http.ResponseWriter, r *http.Request, c *call) error {
	from, to, err := agendaWindow(r.URL.Query(), s.now())
	if err != nil {
		return err
	}
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	occs, err := s.Schedules.Agenda(r.Context(), from, to)
	if err != nil {
		return err
	}
	out := make([]loa.Occurrence, 0, len(occs))
	for _, o := range occs {
		ok, err := c.targetsVisible(o.Targets)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, o)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// calendarVisible reports whether the caller sees cal: station-wide ones
// and those of an area within its scope or above it (a province's
// holidays are its communes' too).
func (c *call) calendarVisible(cal loa.Calendar) (bool, error) {
	if !c.scoped() || cal.AreaID == "" {
		return true, nil
	}
	if ok, err := c.areaInScope(cal.AreaID); err != nil || ok {
		return ok, err
	}
	if err := c.loadPath(c.tok.AreaID); err != nil {
		return false, err
	}
	return c.tree.Within(c.tok.AreaID, cal.AreaID), nil
}

// mayKeepCalendar checks the caller may write a calendar of area (""
// station-wide): a station-wide one needs a station-wide admin, an area's
// a caller whose scope holds the area.
func (c *call) mayKeepCalendar(area string) error {
	if area == "" {
		if c.scoped() || c.tok.Role != loa.RoleAdmin {
			return loa.Errorf(loa.EFORBIDDEN, "area_id: station-wide calendars are kept by station-wide admins; name an area of your scope (%s)", c.tok.AreaID)
		}
		return nil
	}
	if ok, err := c.areaInScope(area); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", area, c.tok.AreaID)
	}
	return nil
}

func (s *Server) listCalendars(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	cals, err := s.Schedules.Calendars(r.Context())
	if err != nil {
		return err
	}
	out := loa.Calendars{}
	for name, cal := range cals {
		if ok, err := c.calendarVisible(cal); err != nil {
			return err
		} else if ok {
			out[name] = cal
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// calendarRequest is the body of PUT /api/v1/calendars/{name}.
type calendarRequest struct {
	Name   string    `json:"name"` // optional; must be the path's
	Dates  *[]string `json:"dates"`
	AreaID *string   `json:"area_id"` // nil: the calendar's own, or the caller's scope for a new one
}

// putCalendar creates or replaces a holiday calendar. The caller must be
// allowed to keep the calendar where it is and where it goes.
func (s *Server) putCalendar(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("name")
	var req calendarRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Name != "" && req.Name != name {
		return loa.Errorf(loa.EINVALID, "name: the body names %q but the path %q", req.Name, name)
	}
	if req.Dates == nil {
		return loa.Errorf(loa.EINVALID, "dates: required (an empty list clears the calendar)")
	}
	if req.AreaID != nil && *req.AreaID != "" {
		if err := loa.ValidateID("area_id", *req.AreaID); err != nil {
			return err
		}
	}
	if s.Schedules == nil {
		return errUnavailable("schedule")
	}
	cals, err := s.Schedules.Calendars(r.Context())
	if err != nil {
		return err
	}
	old, exists := cals[name]
	area := c.tok.AreaID
	if exists {
		area = old.AreaID
		if err := c.mayKeepCalendar(old.AreaID); err != nil {
			return loa.Errorf(loa.EFORBIDDEN, "calendar %q is kept by others; choose another name", name)
		}
	}
	if req.AreaID != nil {
		area = *req.AreaID
	}
	if err := c.mayKeepCalendar(area); err != nil {
		return err
	}
	cal := loa.Calendar{Name: name, Dates: *req.Dates, AreaID: area}
	if err := s.Schedules.PutCalendar(r.Context(), cal); err != nil {
		return err
	}
	c.audit("calendar.put", name, strconv.Itoa(len(cal.Dates))+" dates, area "+cmp.Or(area, "station-wide"))
	writeJSON(w, http.StatusOK, cal)
	return nil
}
