package daemon

import "github.com/loa-broadcast/loa/devices"

// commandService is the fleet as the API's loa.CommandService; the wiring
// can pass m.Fleet itself and drop this.
type commandService struct{ *devices.Fleet }
