package api

import (
	"compress/gzip"
	"encoding/json"
	"math"
	"net/http"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/web"
)

// positionFields names the columns of each row of GET
// /api/v1/devices/positions.
var positionFields = []string{"id", "area_id", "lat", "lon", "presence"}

// positionsAnswer is the overview map's compact list of receivers: one
// row [id, area_id, lat, lon, presence] per placed device in scope (lat
// and lon rounded to 5 decimals, about a metre; presence online, offline
// (also never heard from) or unknown (the broker link is down)), and how
// many in scope have no position. At 5,000 receivers a row is about 40
// bytes, 5 gzipped (23 kB in all); the event stream's devices topic
// carries the changes after it.
type positionsAnswer struct {
	Fields   []string `json:"fields"`
	Devices  [][]any  `json:"devices"`
	Unplaced int      `json:"unplaced"`
}

// devicePositions answers GET /api/v1/devices/positions (?area= narrows
// to a subtree), gzipped for a client that takes it.
func (s *Server) devicePositions(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Devices == nil {
		return errUnavailable("device")
	}
	within := r.URL.Query().Get("area")
	if within != "" {
		if err := checkAreaParam(c, within); err != nil {
			return err
		}
	} else if _, err := c.areaList(); err != nil { // one read of the tree, not a path per device
		return err
	}
	list, err := s.Devices.Devices(r.Context())
	if err != nil {
		return err
	}
	out := positionsAnswer{Fields: positionFields, Devices: [][]any{}}
	for _, d := range list {
		if ok, err := c.areaInScope(d.AreaID); err != nil {
			return err
		} else if !ok || within != "" && !c.tree.Within(d.AreaID, within) {
			continue
		}
		if d.Lat == 0 && d.Lon == 0 {
			out.Unplaced++
			continue
		}
		presence := loa.PresenceOffline // never heard from
		if s.Presence != nil {
			if st, ok := s.Presence.DeviceState(d.ID); ok {
				presence = presenceOf(&st)
			}
		}
		out.Devices = append(out.Devices, []any{d.ID, d.AreaID, round5(d.Lat), round5(d.Lon), presence})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	if !web.AcceptsGzip(r) {
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(out) // the client may be gone; nothing to do
		return nil
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(http.StatusOK)
	zw := gzip.NewWriter(w)
	_ = json.NewEncoder(zw).Encode(out)
	_ = zw.Close()
	return nil
}

// round5 rounds a coordinate to 5 decimals (about 1.1 m).
func round5(x float64) float64 { return math.Round(x*1e5) / 1e5 }
