package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// PlayLogReader reads the station's broadcast log (nhật ký phát thanh).
type PlayLogReader interface {
	PlayLog(ctx context.Context, f loa.PlayLogFilter) ([]loa.PlayLogEntry, error)
}

// Play log page sizes.
const (
	defaultPlayLogLimit = 100
	maxPlayLogLimit     = 1000
	maxPlayLogCSV       = 10000  // lines of one CSV export (a month of a busy commune)
	maxPlayLogOffset    = 100000 // how far back paging goes
)

// playLogEvents are the events ?event= may name.
var playLogEvents = []string{loa.PlayStarted, loa.PlayEnded, loa.PlayStopped, loa.PlayFailed, loa.PlayPreempted,
	loa.PlayMissed, loa.PlayResumed, loa.PlaySkipped, loa.PlayAired, loa.PlayRelaySwitch}

// playLog answers play log entries by ?from=&to= (dates or RFC 3339 times, [from, to)),
// ?area=, ?device=, ?event=, ?limit= and ?offset= (paging, newest first);
// ?format=csv answers them as a spreadsheet (playlog_csv.go). A scoped caller's area is its scope when
// it names none, and must lie within its scope when it does.
func (s *Server) playLog(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	var f loa.PlayLogFilter
	var err error
	if raw := q.Get("from"); raw != "" {
		if f.From, err = parseBound("from", raw, false); err != nil {
			return err
		}
	}
	if raw := q.Get("to"); raw != "" {
		if f.To, err = parseBound("to", raw, true); err != nil {
			return err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return loa.Errorf(loa.EINVALID, "to: must be after from")
	}
	csv := false
	switch format := q.Get("format"); format {
	case "", "json":
	case "csv":
		csv = true
	default:
		return loa.Errorf(loa.EINVALID, "format: %s is neither json nor csv", strconv.Quote(format))
	}
	f.Limit = defaultPlayLogLimit
	maxLimit := maxPlayLogLimit
	if csv {
		f.Limit, maxLimit = maxPlayLogCSV, maxPlayLogCSV
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			return loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxLimit)
		}
		f.Limit = n
	}
	if raw := q.Get("offset"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > maxPlayLogOffset {
			return loa.Errorf(loa.EINVALID, "offset: must be an integer within 0..%d", maxPlayLogOffset)
		}
		f.Offset = n
	}
	if f.Event = q.Get("event"); f.Event != "" && !slices.Contains(playLogEvents, f.Event) {
		return loa.Errorf(loa.EINVALID, "event: %s is not one of %s", strconv.Quote(f.Event), strings.Join(playLogEvents, ", "))
	}
	f.Area, f.Device = q.Get("area"), q.Get("device")
	if f.Area != "" {
		if err := loa.ValidateID("area", f.Area); err != nil {
			return err
		}
	}
	if f.Device != "" {
		if err := loa.ValidateID("device", f.Device); err != nil {
			return err
		}
	}
	if c.scoped() {
		if f.Area == "" {
			f.Area = c.tok.AreaID
		} else if ok, err := c.areaInScope(f.Area); err != nil {
			return err
		} else if !ok {
			return loa.Errorf(loa.EFORBIDDEN, "area: %s is outside your scope (%s)", f.Area, c.tok.AreaID)
		}
		if f.Device != "" {
			if ok, err := c.deviceInScope(f.Device); err != nil {
				return err
			} else if !ok {
				return loa.Errorf(loa.EFORBIDDEN, "device: %s is outside your scope (%s)", f.Device, c.tok.AreaID)
			}
		}
	}
	if s.PlayLog == nil {
		return errUnavailable("play log")
	}
	entries, err := s.PlayLog.PlayLog(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]loa.PlayLogEntry, 0, len(entries))
	for _, e := range entries {
		e, ok, err := c.playLogEntryInScope(e)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, e)
		}
	}
	if csv {
		return s.writePlayLogCSV(w, r, c, out)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// playLogEntryInScope reports whether the caller may see e: some target
// area or device of it lies within the caller's scope. The entry's device
// list is cut to the caller's devices, so a province-wide programme does
// not list the receivers of other communes. The reader already filters by
// area; this keeps a scoped caller's view right whatever it does.
func (c *call) playLogEntryInScope(e loa.PlayLogEntry) (loa.PlayLogEntry, bool, error) {
	if !c.scoped() {
		return e, true, nil
	}
	visible := false
	for _, a := range e.Areas {
		ok, err := c.areaInScope(a)
		if err != nil {
			return e, false, err
		}
		visible = visible || ok
	}
	var devices []string
	for _, d := range e.Devices {
		ok, err := c.deviceInScope(d)
		if err != nil {
			return e, false, err
		}
		if ok {
			devices = append(devices, d)
		}
	}
	if len(devices) > 0 {
		visible = true
	}
	e.Devices = devices
	return e, visible, nil
}
