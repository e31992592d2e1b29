package daemon

import (
	"context"
	"encoding/json"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/devices"
)

// commandService adapts the fleet to loa.CommandService for the API.
type commandService struct{ fleet *devices.Fleet }

var _ loa.CommandService = commandService{}

func (c commandService) Command(ctx context.Context, deviceID, op string, args json.RawMessage) (loa.CommandResult, error) {
	var a any
	if len(args) > 0 {
		a = args
	}
	ack, err := c.fleet.Command(ctx, deviceID, op, a)
	res, ok := c.CommandResult(ack.ID)
	if !ok {
		res = loa.CommandResult{ID: ack.ID, Device: deviceID, Op: op, State: ack.State, Code: ack.Code, Msg: ack.Msg}
	}
	return res, err
}

func (c commandService) CommandResult(id string) (loa.CommandResult, bool) {
	r, ok := c.fleet.CommandResult(id)
	if !ok {
		return loa.CommandResult{}, false
	}
	return loa.CommandResult{ID: r.ID, Device: r.Device, Op: r.Op, State: r.State, Code: r.Code,
		Msg: r.Msg, SentAt: r.SentAt, DoneAt: r.DoneAt}, true
}
