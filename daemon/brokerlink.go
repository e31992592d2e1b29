package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/devices"
)

// brokerLinkCheck is how often the broker link is looked at for its alarm.
const brokerLinkCheck = time.Second

// watchBrokerLink raises the broker_link station alarm while the
// controller's link to its MQTT broker is down (at start, or an outage)
// and clears it when the link is back, until ctx ends.
func watchBrokerLink(ctx context.Context, alarms *devices.Alarms, fleet *devices.Fleet) {
	if alarms == nil || fleet == nil {
		return
	}
	t := time.NewTicker(brokerLinkCheck)
	defer t.Stop()
	raised := false
	for {
		h := fleet.BrokerHealth()
		switch {
		case !h.Connected && !raised:
			alarms.RaiseStation(loa.AlarmBrokerLink, loa.SeverityCritical, 0, 0,
				fmt.Sprintf("the controller is not connected to its mqtt broker (down since %s): receivers cannot be commanded and their presence is unknown; it keeps trying, and tunes wait",
					h.Since.Format(time.RFC3339)))
			raised = true
		case h.Connected && raised:
			alarms.ClearStation(loa.AlarmBrokerLink, "connected to the mqtt broker again")
			raised = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
