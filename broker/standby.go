package broker

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A controller of a cluster that is not the leader must not hold
// receivers: only the leader commands them, and MQTT 3.1.1 has no
// redirect. While the broker is not accepting (SetAccepting(false), or
// Config.Standby from the start), a device's CONNECT is answered with
// CONNACK 3, "server unavailable", before its credentials are checked, and
// devices already connected are dropped, so each moves on to the next
// controller address it was given (CONTRACT.md, "Brokers"). The
// controller's own account is still let in (its password checked as
// usual): a node's own link, tools and benches keep working on a follower,
// and the controller's in-process client is never refused.

// errStandby ends a device connection refused or dropped on standby.
var errStandby = errors.New("broker: standby, not accepting devices")

// SetAccepting opens (true) or closes (false) the broker to devices. On
// closing it drops every device connected, and their Last Wills are
// published here as for any dropped connection.
func (b *Broker) SetAccepting(on bool) {
	if b.standby.Swap(!on) == !on {
		return // no change
	}
	if on {
		b.log.Info("mqtt broker accepting devices")
		return
	}
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if b.dropOnStandby(cl) {
			n++
		}
	}
	b.log.Info("mqtt broker on standby: devices refused (CONNACK 3) and dropped", "dropped", n)
}

// Accepting reports whether devices may connect.
func (b *Broker) Accepting() bool { return !b.standby.Load() }

// dropOnStandby drops cl if it is a device's connection.
func (b *Broker) dropOnStandby(cl *mqtt.Client) bool {
	if cl.Net.Inline || cl.Closed() || string(cl.Properties.Username) == b.cfg.ControllerUser {
		return false
	}
	b.standbyDrops.Add(1)
	cl.Stop(errStandby)
	return true
}

// OnConnect answers a device's CONNECT with CONNACK 3 while on standby;
// mochi then closes the connection (an error from OnConnect sends nothing
// itself).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b := h.b
	if !b.standby.Load() || string(pk.Connect.Username) == b.cfg.ControllerUser {
		return nil
	}
	b.standbyRefusals.Add(1)
	if err := b.srv.SendConnack(cl, packets.ErrServerUnavailable, false, nil); err != nil {
		b.log.Debug("mqtt standby refusal not sent", "client", cl.ID, "err", err)
	}
	return errStandby
}
