package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// Health history ranges.
const (
	defaultHealthRange = 24 * time.Hour
	maxHealthRange     = 31 * 24 * time.Hour
)

// deviceHealth answers GET /api/v1/devices/{id}/health?from=&to=&step= (dates or RFC 3339 times,
// [from, to), default the last 24 hours, at most 31 days): the device's
// aggregates per step (1h, 6h or 1d; default 1h), oldest first, the hour
// in progress included.
func (s *Server) deviceHealth(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	if ok, err := c.deviceInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
	}
	q := r.URL.Query()
	to := s.now()
	var err error
	if raw := q.Get("to"); raw != "" {
		if to, err = parseBound("to", raw, true); err != nil {
			return err
		}
	}
	from := to.Add(-defaultHealthRange)
	if raw := q.Get("from"); raw != "" {
		if from, err = parseBound("from", raw, false); err != nil {
			return err
		}
	}
	if !to.After(from) {
		return loa.Errorf(loa.EINVALID, "to: must be after from")
	}
	if to.Sub(from) > maxHealthRange {
		return loa.Errorf(loa.EINVALID, "from: the range may span at most 31 days")
	}
	if s.Health == nil {
		return errUnavailable("health")
	}
	step := time.Hour
	switch raw := q.Get("step"); raw {
	case "", "1h":
	case "6h":
		step = 6 * time.Hour
	case "1d":
		step = 24 * time.Hour
	default:
		return loa.Errorf(loa.EINVALID, "step: want 1h, 6h or 1d, not %s", strconv.Quote(raw))
	}
	hours, err := s.Health.HealthHistory(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	if hours == nil {
		hours = []loa.HealthHour{}
	}
	writeJSON(w, http.StatusOK, coarsen(hours, step))
	return nil
}

// coarsen folds hourly aggregates, oldest first, into steps of step (UTC):
// a month's chart needs 120 points, not 720. Each step's hour is its start;
// online seconds add up over the step.
func coarsen(hours []loa.HealthHour, step time.Duration) []loa.HealthHour {
	if step <= time.Hour {
		return hours
	}
	var out []loa.HealthHour
	for _, h := range hours {
		start := h.Hour.Truncate(step)
		if n := len(out); n == 0 || !out[n-1].Hour.Equal(start) {
			h.Hour = start
			out = append(out, h)
			continue
		}
		a := &out[len(out)-1]
		if h.Samples > 0 {
			if a.Samples == 0 {
				a.RSSIMin, a.RSSIMax, a.TempMaxC = h.RSSIMin, h.RSSIMax, h.TempMaxC
			} else {
				a.RSSIMin, a.RSSIMax, a.TempMaxC = min(a.RSSIMin, h.RSSIMin), max(a.RSSIMax, h.RSSIMax), max(a.TempMaxC, h.TempMaxC)
			}
			a.RSSIAvg = (a.RSSIAvg*float64(a.Samples) + h.RSSIAvg*float64(h.Samples)) / float64(a.Samples+h.Samples)
			a.Samples += h.Samples
			a.VolumeLast = h.VolumeLast
		}
		a.OnlineSeconds += h.OnlineSeconds
		a.Received += h.Received
		a.Lost += h.Lost
		a.Late += h.Late
		a.Concealed += h.Concealed
		a.FECRecovered += h.FECRecovered
		a.JitterMaxMs = max(a.JitterMaxMs, h.JitterMaxMs)
	}
	return out
}
