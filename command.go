package loa

import (
	"context"
	"encoding/json"
	"time"
)

// CommandResult is what became of a command sent to a device.
type CommandResult struct {
	ID     string    `json:"id"`
	Device string    `json:"device"`
	Op     string    `json:"op"`
	State  string    `json:"state"` // sent, accepted, progress, done, failed, expired, timeout, unavailable
	Code   string    `json:"code,omitempty"`
	Msg    string    `json:"msg,omitempty"`
	SentAt time.Time `json:"sent_at"`
	DoneAt time.Time `json:"done_at,omitzero"`
}

// CommandService sends operator commands (volume, ...) to devices and
// reports their results. Play and stop belong to sessions, not here.
type CommandService interface {
	// Command sends op with args to the device and waits for its final
	// ack; the result is returned with the error when it failed.
	Command(ctx context.Context, deviceID, op string, args json.RawMessage) (CommandResult, error)
	CommandResult(id string) (CommandResult, bool)
}
