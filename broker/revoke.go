package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// revocations closes the gap between a credential check and the client
// joining mochi's table: a connection whose password was checked just
// before the controller rotated or revoked it would be missed by
// Disconnect's sweep of the table. Each Disconnect bumps the device's
// epoch before sweeping; a connection remembers the epoch from before its
// check, and is dropped once established if the epoch moved.
type revocations struct {
	mu     sync.Mutex
	epochs map[string]uint64       // device id → Disconnect count
	authed map[*mqtt.Client]uint64 // connections between check and session, with their epoch
}

func newRevocations() *revocations {
	return &revocations{epochs: map[string]uint64{}, authed: map[*mqtt.Client]uint64{}}
}

// checking records cl's epoch; call before checking its credentials.
func (r *revocations) checking(cl *mqtt.Client, device string) {
	r.mu.Lock()
	r.authed[cl] = r.epochs[device]
	r.mu.Unlock()
}

// forget drops cl's record (refused, or gone before its session).
func (r *revocations) forget(cl *mqtt.Client) {
	r.mu.Lock()
	delete(r.authed, cl)
	r.mu.Unlock()
}

// revoke bumps device's epoch; call before sweeping the table.
func (r *revocations) revoke(device string) {
	r.mu.Lock()
	r.epochs[device]++
	r.mu.Unlock()
}

// stale reports whether device was revoked since cl was checked, and
// forgets cl.
func (r *revocations) stale(cl *mqtt.Client, device string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.authed[cl]
	delete(r.authed, cl)
	return ok && e != r.epochs[device]
}

// OnSessionEstablished drops a device whose credentials were rotated or
// revoked while it was being let in.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	b := h.b
	user := string(cl.Properties.Username)
	if cl.Net.Inline || user == b.cfg.ControllerUser {
		return
	}
	if b.revoked.stale(cl, user) {
		_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		b.log.Info("device disconnected: credentials changed while it connected", "device", user, "client", cl.ID)
	}
}

// OnDisconnect forgets a connection that never reached its session.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.b.revoked.forget(cl)
}
