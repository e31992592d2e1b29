package api

import (
	"encoding/json"
	"net/http"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// commandRequest is the body of POST /api/v1/devices/{id}/commands.
type commandRequest struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
}

// deviceInScope loads a device the caller may see; others are not found.
func (s *Server) deviceInScope(r *http.Request, c *call, id string) (*loa.Device, error) {
	if s.Devices == nil {
		return nil, errUnavailable("device")
	}
	d, err := s.Devices.Device(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if ok, err := c.areaInScope(d.AreaID); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
	}
	return d, nil
}

// sendCommand sends a command to one device and answers with its result
// once the device acked it (or the wait ended).
func (s *Server) sendCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	var req commandRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if !protocol.OperatorOp(req.Op) {
		return loa.Errorf(loa.EINVALID, "op: %q is not a device command; use %s", req.Op, protocol.OperatorOps())
	}
	// Bad args are refused here, before anything reaches the device.
	if string(req.Args) == "null" {
		req.Args = nil
	}
	if err := protocol.CheckArgs(req.Op, req.Args); err != nil {
		return loa.Errorf(loa.EINVALID, "args: %v", err)
	}
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := inService(d); err != nil {
		return err
	}
	if s.Commands == nil {
		return errUnavailable("command")
	}
	res, err := s.Commands.Command(r.Context(), d.ID, req.Op, req.Args)
	if res.ID != "" {
		c.audit("device.command", d.ID, req.Op+" "+res.ID+" "+res.State)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// getCommand answers a command's result, for a device in scope.
func (s *Server) getCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Commands == nil {
		return errUnavailable("command")
	}
	id := r.PathValue("id")
	res, ok := s.Commands.CommandResult(id)
	if !ok {
		return loa.Errorf(loa.ENOTFOUND, "command %q not found", id)
	}
	if _, err := s.deviceInScope(r, c, res.Device); err != nil {
		return loa.Errorf(loa.ENOTFOUND, "command %q not found", id)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
