package loa

import (
	"context"
	"encoding/json"
	"time"
)

// CommandResult is what became of a command sent to a device; the fleet
// keeps the last 10,000.
type CommandResult struct {
	ID     string    `json:"id"`
	Device string    `json:"device"`
	Op     string    `json:"op"`
	State  string    `json:"state"`          // the device's ack state (accepted, progress, done, failed, expired) or a Command state
	Code   string    `json:"code,omitempty"` // error code when the command failed
	Msg    string    `json:"msg,omitempty"`  // the device's ack message, or why it failed here
	SentAt time.Time `json:"sent_at"`
	DoneAt time.Time `json:"done_at,omitzero"`
}

// CommandResult states beyond the device's ack states.
const (
	CommandSent        = "sent"        // published, no ack yet
	CommandTimeout     = "timeout"     // no final ack in time
	CommandUnavailable = "unavailable" // not sent or abandoned: device offline, broker error, fleet closed
)

// CommandService sends operator commands (volume, ...) to devices and
// reports their results. Play and stop belong to sessions, not here.
type CommandService interface {
	// Command sends op with args to the device and waits for its final
	// ack; the result is returned with the error when it failed.
	Command(ctx context.Context, deviceID, op string, args json.RawMessage) (CommandResult, error)
	CommandResult(id string) (CommandResult, bool)
}
