package loa

import (
	"context"
	"encoding/json"
	"time"
)

// Group command states.
const (
	GroupRunning = "running" // some online device has not answered yet
	GroupDone    = "done"    // every device has a final result
)

// Per-device states of a group command. Done, failed and expired are the
// device's final ack; the others are the controller's verdict.
const (
	GroupPending = "pending" // sent, no final ack yet
	GroupDoneAck = "done"
	GroupFailed  = "failed"  // the device failed it, or the broker did not take it
	GroupExpired = "expired" // the device got it after its expiry
	GroupOffline = "offline" // offline when the command was created: not sent
	GroupTimeout = "timeout" // online, sent, no final ack within the timeout
)

// Group command timeouts: how long the controller waits for every ack. The
// command also expires on the devices then, so none runs it later.
const (
	GroupDefaultTimeout = 15 * time.Second
	GroupMaxTimeout     = 10 * time.Minute
)

// GroupCommand is one command sent to every device of an area subtree,
// with a result per device.
type GroupCommand struct {
	ID        string          `json:"id"`
	AreaID    string          `json:"area"`
	Op        string          `json:"op"`
	Args      json.RawMessage `json:"args,omitempty"`
	TimeoutMs int64           `json:"timeout_ms"`
	State     string          `json:"state"`
	CreatedBy string          `json:"created_by,omitempty"` // token id
	CreatedAt time.Time       `json:"created_at"`
	SettledAt time.Time       `json:"settled_at,omitzero"`
	Totals    GroupTotals     `json:"totals"`
	Results   []GroupResult   `json:"results"` // sorted by device id
}

// GroupTotals count a group command's results by state.
type GroupTotals struct {
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Offline int `json:"offline"`
	Expired int `json:"expired"`
	Timeout int `json:"timeout"`
	Pending int `json:"pending"`
}

// GroupResult is what became of a group command on one device.
type GroupResult struct {
	Device  string          `json:"device"`
	Command string          `json:"command,omitempty"` // the device's command id, for GET /api/v1/commands/{id}
	State   string          `json:"state"`
	Code    string          `json:"code,omitempty"`   // loa error code of a failure
	Msg     string          `json:"msg,omitempty"`    // the device's ack message, or why it failed here
	Result  json.RawMessage `json:"result,omitempty"` // the op's outcome (test: level_db, passed)
	AckedAt time.Time       `json:"acked_at,omitzero"`
}

// Final reports whether the result will not change any more.
func (r GroupResult) Final() bool { return r.State != GroupPending }

// Count recomputes Totals from Results.
func (g *GroupCommand) Count() {
	var t GroupTotals
	for i := range g.Results {
		switch g.Results[i].State {
		case GroupDoneAck:
			t.Done++
		case GroupFailed:
			t.Failed++
		case GroupOffline:
			t.Offline++
		case GroupExpired:
			t.Expired++
		case GroupTimeout:
			t.Timeout++
		default:
			t.Pending++
		}
	}
	g.Totals = t
}

// GroupCommandService sends commands to whole areas.
type GroupCommandService interface {
	// StartGroupCommand resolves g.AreaID to its devices, persists g and
	// sends g.Op to every online one; it returns at once with the devices
	// known offline already settled. It fills ID, State, CreatedAt and
	// Results.
	StartGroupCommand(ctx context.Context, g *GroupCommand) error
	// GroupCommand returns the group command with id, live while it runs;
	// ENOTFOUND if there is none.
	GroupCommand(ctx context.Context, id string) (*GroupCommand, error)
	// WaitGroupCommand returns the group command once it is done, or as
	// it is when ctx ends.
	WaitGroupCommand(ctx context.Context, id string) (*GroupCommand, error)
}
