package api

import (
	"net/http"

	"github.com/loa-broadcast/loa"
)

// previewTargets answers POST /api/v1/alerts/preview-targets {targets}:
// what the alert desk shows before sending — how many receivers the
// targets name, how many are online, how many of those run on their
// battery and the least runtime among them (loa.PreviewPower). It
// changes nothing.
func (s *Server) previewTargets(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Targets loa.Targets `json:"targets"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Targets.Empty() {
		return loa.Errorf(loa.EINVALID, "targets: name at least one area or device")
	}
	if err := c.targetsAllowed(req.Targets); err != nil {
		return err
	}
	if s.Areas == nil || s.Devices == nil || s.Presence == nil {
		return errUnavailable("device")
	}
	areas, err := s.Areas.Areas(r.Context())
	if err != nil {
		return err
	}
	devices, err := s.Devices.Devices(r.Context())
	if err != nil {
		return err
	}
	ids, err := req.Targets.Resolve(loa.NewAreaTree(areas), devices)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loa.PreviewPower(ids, s.Presence.DeviceState))
	return nil
}
