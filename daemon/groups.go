package daemon

import (
	"encoding/json"
	"time"

	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/station"
)

// groupFleet gives the group service the fleet's group runs through
// station's interface.
type groupFleet struct{ fleet *devices.Fleet }

func (f groupFleet) PrepareGroup(op string, args json.RawMessage, ids []string, timeout time.Duration) (station.GroupRun, error) {
	run, err := f.fleet.PrepareGroup(op, args, ids, timeout)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return run, nil
}
