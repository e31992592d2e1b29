package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// firmwareWait is how long SendFirmware waits for the final ack when ctx
// has no deadline: download, install and a reboot on a slow 4G link.
const firmwareWait = time.Hour

// SendFirmware sends a firmware command and waits for its final ack, which
// the receiver sends from its new boot (done) or from the old image after
// a rollback (failed rolled_back); the wait lasts until ctx's deadline.
// progress, if not nil, sees every accepted and progress ack, on the
// fleet's handler goroutine: it must not block. Errors are Command's.
func (f *Fleet) SendFirmware(ctx context.Context, deviceID string, args protocol.FirmwareArgs, progress func(protocol.Ack)) (protocol.Ack, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return protocol.Ack{}, fmt.Errorf("devices: encoding firmware args: %w", err)
	}
	if _, err := protocol.DecodeFirmwareArgs(b); err != nil {
		return protocol.Ack{}, loa.Errorf(loa.EINVALID, "%v", err)
	}
	wait := firmwareWait
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), time.Millisecond)
	}
	return f.command(ctx, deviceID, protocol.OpFirmware, json.RawMessage(b), cmdOpts{timeout: wait, onAck: progress})
}
