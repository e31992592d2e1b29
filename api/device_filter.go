package api

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/loa-broadcast/loa"
)

// deviceFilter is the parsed ?area=&state=&problem= of GET /api/v1/devices.
type deviceFilter struct {
	area    string
	state   string // "", online, offline, unknown
	problem string // "", an alarm kind, or any
}

func parseDeviceFilter(r *http.Request, c *call) (deviceFilter, error) {
	q := r.URL.Query()
	f := deviceFilter{area: q.Get("area"), state: q.Get("state"), problem: q.Get("problem")}
	switch f.state {
	case "", loa.PresenceOnline, loa.PresenceOffline, loa.PresenceUnknown:
	default:
		return f, loa.Errorf(loa.EINVALID, "state: want online, offline or unknown, not %s", strconv.Quote(f.state))
	}
	if f.problem != "" && f.problem != "any" && !loa.ValidAlarmKind(f.problem) {
		return f, loa.Errorf(loa.EINVALID, "problem: want any or one of %v, not %s", loa.AlarmKinds, strconv.Quote(f.problem))
	}
	if f.problem != "" && c.s.Alarms == nil {
		return f, errUnavailable("alarm")
	}
	if f.area != "" {
		if err := checkAreaParam(c, f.area); err != nil {
			return f, err
		}
	}
	return f, nil
}

// match reports whether v passes the filter. A device the controller has
// never heard from is offline; while its broker link is down, every
// device is unknown.
func (f *deviceFilter) match(c *call, v *deviceView) bool {
	if f.area != "" && !c.tree.Within(v.AreaID, f.area) {
		return false
	}
	if f.state != "" && f.state != presenceOf(v.State) {
		return false
	}
	switch f.problem {
	case "":
		return true
	case "any":
		return len(v.Problems) > 0
	default:
		return slices.Contains(v.Problems, f.problem)
	}
}

// problems returns the kinds of active alarms by device (of one device
// when device is not empty); nil without an alarm service.
func (s *Server) problems(r *http.Request, device string) (map[string][]string, error) {
	if s.Alarms == nil {
		return nil, nil
	}
	list, err := s.Alarms.Alarms(r.Context(), loa.AlarmFilter{Active: true, Device: device})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string)
	for _, a := range list {
		out[a.Device] = append(out[a.Device], a.Kind)
	}
	for _, kinds := range out {
		slices.Sort(kinds)
	}
	return out, nil
}

// presenceOf is the presence of a device view's state.
func presenceOf(st *loa.DeviceState) string {
	switch {
	case st == nil:
		return loa.PresenceOffline
	case st.Presence != "":
		return st.Presence
	case st.Online:
		return loa.PresenceOnline
	default:
		return loa.PresenceOffline
	}
}
