package api

import (
	"net/http"
	"time"

	"github.com/loa-broadcast/loa"
)

// Health history ranges.
const (
	defaultHealthRange = 24 * time.Hour
	maxHealthRange     = 31 * 24 * time.Hour
)

// deviceHealth answers GET /api/v1/devices/{id}/health?from=&to= (dates or RFC 3339 times,
// [from, to), default the last 24 hours, at most 31 days): the device's
// hourly aggregates, oldest first, the hour in progress included.
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
	hours, err := s.Health.HealthHistory(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	if hours == nil {
		hours = []loa.HealthHour{}
	}
	writeJSON(w, http.StatusOK, hours)
	return nil
}
