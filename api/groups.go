package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// groupRequest is the body of POST /api/v1/areas/{id}/commands.
type groupRequest struct {
	Op        string          `json:"op"`
	Args      json.RawMessage `json:"args"`
	Timeout   string          `json:"timeout"`    // a Go duration, "15s"; "" = loa.GroupDefaultTimeout
	TimeoutMs *int64          `json:"timeout_ms"` // or milliseconds, as answers also carry it
}

// groupView is a group command as the API answers it: its timeout both as
// the Go duration requests send and, as before, in milliseconds.
type groupView struct {
	*loa.GroupCommand
	Timeout string `json:"timeout"`
}

func viewGroup(g *loa.GroupCommand) groupView {
	return groupView{GroupCommand: g, Timeout: (time.Duration(g.TimeoutMs) * time.Millisecond).String()}
}

// maxGroupWait bounds ?wait= on the group command routes.
const maxGroupWait = 5 * time.Minute

// parseGroupRequest checks a group command request completely.
func parseGroupRequest(req groupRequest) (op string, args json.RawMessage, timeout time.Duration, err error) {
	if !protocol.OperatorOp(req.Op) {
		return "", nil, 0, loa.Errorf(loa.EINVALID, "op: %q is not a group command; use %s", req.Op, protocol.OperatorOps())
	}
	// Checked once here instead of failing on every device.
	if string(req.Args) == "null" {
		req.Args = nil
	}
	if err := protocol.CheckArgs(req.Op, req.Args); err != nil {
		return "", nil, 0, loa.Errorf(loa.EINVALID, "args: %v", err)
	}
	timeout = loa.GroupDefaultTimeout
	var ns *int64
	if req.TimeoutMs != nil {
		if ms := *req.TimeoutMs; ms < 100 || ms > loa.GroupMaxTimeout.Milliseconds() {
			return "", nil, 0, loa.Errorf(loa.EINVALID, "timeout_ms: %d outside 100..%d", ms, loa.GroupMaxTimeout.Milliseconds())
		}
		n := *req.TimeoutMs * int64(time.Millisecond)
		ns = &n
	}
	if d, given, err := durationIn("timeout", "timeout_ms", req.Timeout, ns, "15s"); err != nil {
		return "", nil, 0, err
	} else if given {
		timeout = d
		if timeout < 100*time.Millisecond || timeout > loa.GroupMaxTimeout {
			return "", nil, 0, loa.Errorf(loa.EINVALID, "timeout: %v outside 100ms..%v", timeout, loa.GroupMaxTimeout)
		}
	}
	return req.Op, req.Args, timeout, nil
}

// parseWait reads ?wait=, a Go duration up to maxGroupWait; 0 when absent.
func parseWait(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxGroupWait {
		return 0, loa.Errorf(loa.EINVALID, "wait: %s is not a duration within 0..%v", strconv.Quote(v), maxGroupWait)
	}
	return d, nil
}

// writeGroup answers 200 once the group command is done, 202 while it runs.
func writeGroup(w http.ResponseWriter, g *loa.GroupCommand) {
	status := http.StatusAccepted
	if g.State == loa.GroupDone {
		status = http.StatusOK
	}
	writeJSON(w, status, viewGroup(g))
}

// waitGroup waits up to d for the group command to settle.
func (s *Server) waitGroup(ctx context.Context, id string, d time.Duration) (*loa.GroupCommand, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return s.Groups.WaitGroupCommand(ctx, id)
}

// startGroupCommand sends a command to every device of an area subtree in
// the caller's scope. It answers at once (202) with the devices known
// offline already settled, or with ?wait= once settled (200) or the wait
// ends (202).
func (s *Server) startGroupCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	var req groupRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	op, args, timeout, err := parseGroupRequest(req)
	if err != nil {
		return err
	}
	wait, err := parseWait(r)
	if err != nil {
		return err
	}
	area := r.PathValue("id")
	if err := loa.ValidateID("area", area); err != nil {
		return err
	}
	if ok, err := c.areaInScope(area); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "area %q not found", area)
	}
	if s.Groups == nil {
		return errUnavailable("group command")
	}
	g := &loa.GroupCommand{AreaID: area, Op: op, Args: args, TimeoutMs: timeout.Milliseconds(), CreatedBy: c.tok.ID}
	if err := s.Groups.StartGroupCommand(r.Context(), g); err != nil {
		return err
	}
	c.audit("group.command", area, op+" "+g.ID+" to "+strconv.Itoa(len(g.Results))+" devices")
	if wait > 0 && g.State != loa.GroupDone {
		if got, err := s.waitGroup(r.Context(), g.ID, wait); err == nil {
			g = got
		}
	}
	writeGroup(w, g)
	return nil
}

// getGroupCommand answers a group command whose area is in the caller's
// scope, live while it runs; ?wait= waits up to that long for it to
// settle. It is always 200: the state says whether it is done.
func (s *Server) getGroupCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	wait, err := parseWait(r)
	if err != nil {
		return err
	}
	if s.Groups == nil {
		return errUnavailable("group command")
	}
	id := r.PathValue("id")
	g, err := s.Groups.GroupCommand(r.Context(), id)
	if err != nil {
		return err
	}
	if ok, err := c.areaInScope(g.AreaID); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "group command %q not found", id)
	}
	if wait > 0 && g.State != loa.GroupDone {
		if got, err := s.waitGroup(r.Context(), id, wait); err == nil {
			g = got
		}
	}
	writeJSON(w, http.StatusOK, viewGroup(g))
	return nil
}
