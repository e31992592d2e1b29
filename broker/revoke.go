package broker

import (
	"errors"
	"slices"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// revocations makes Disconnect complete and honest.
//
// Complete: a connection whose password was checked just before the
// controller rotated or revoked it would be missed by Disconnect's sweep
// of mochi's table, which it joins only after the check. Each Disconnect
// bumps the device's epoch before sweeping; a connection remembers the
// epoch from before its check and is dropped once established if it
// moved.
//
// Honest: mochi forgets the Will of a client stopped before its read loop
// starts (it takes it for a clean DISCONNECT), so a device dropped right
// after connecting would never be seen offline. The Will of every device
// connection is kept from its CONNECT, and published here for a dropped
// connection whose Will mochi did not send.
type revocations struct {
	mu     sync.Mutex
	epochs map[string]uint64       // device id → Disconnect count
	authed map[*mqtt.Client]uint64 // connections between check and session, with their epoch
	wills  map[*mqtt.Client]will   // device connections' Wills not yet sent
	kicked map[*mqtt.Client]bool   // connections Disconnect dropped
}

func newRevocations() *revocations {
	return &revocations{epochs: map[string]uint64{}, authed: map[*mqtt.Client]uint64{},
		wills: map[*mqtt.Client]will{}, kicked: map[*mqtt.Client]bool{}}
}

// checking records cl's epoch; call before checking its credentials.
func (r *revocations) checking(cl *mqtt.Client, device string) {
	r.mu.Lock()
	r.authed[cl] = r.epochs[device]
	r.mu.Unlock()
}

// will is what the broker needs to publish a Last Will itself.
type will struct {
	topic   string
	payload []byte
	retain  bool
	qos     byte
}

// admitted keeps the Will of a connection let in.
func (r *revocations) admitted(cl *mqtt.Client, pk packets.Packet) {
	c := &pk.Connect
	if !c.WillFlag {
		return
	}
	r.mu.Lock()
	r.wills[cl] = will{c.WillTopic, slices.Clone(c.WillPayload), c.WillRetain, c.WillQos}
	r.mu.Unlock()
}

// forget drops what is kept of cl.
func (r *revocations) forget(cl *mqtt.Client) {
	r.mu.Lock()
	delete(r.authed, cl)
	delete(r.wills, cl)
	delete(r.kicked, cl)
	r.mu.Unlock()
}

// revoke bumps device's epoch; call before sweeping the table.
func (r *revocations) revoke(device string) {
	r.mu.Lock()
	r.epochs[device]++
	r.mu.Unlock()
}

// kick marks cl as dropped by the controller.
func (r *revocations) kick(cl *mqtt.Client) {
	r.mu.Lock()
	r.kicked[cl] = true
	r.mu.Unlock()
}

// stale reports whether device was revoked since cl was checked.
func (r *revocations) stale(cl *mqtt.Client, device string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.authed[cl]
	delete(r.authed, cl)
	return ok && e != r.epochs[device]
}

// disconnected returns the Will still owed for cl, and forgets cl. One is
// owed when mochi did not send it although the connection did not end
// with the client's own DISCONNECT: a kick, or a dead link its writer
// noticed first (mochi's reader then takes the stop for a clean end).
func (r *revocations) disconnected(cl *mqtt.Client) (w will, owed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, hasWill := r.wills[cl]
	owed = hasWill && (r.kicked[cl] || !errors.Is(cl.StopCause(), packets.CodeDisconnect))
	delete(r.authed, cl)
	delete(r.wills, cl)
	delete(r.kicked, cl)
	return w, owed
}

// kick drops cl as not authorised.
func (b *Broker) kick(cl *mqtt.Client) {
	b.revoked.kick(cl)
	_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized) // the error only echoes the code
}

// OnSessionEstablished drops a device whose credentials were rotated or
// revoked while it was being let in, or let in as the broker went on
// standby.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	b := h.b
	user := string(cl.Properties.Username)
	if cl.Net.Inline || user == b.cfg.ControllerUser {
		return
	}
	if b.revoked.stale(cl, user) {
		b.kick(cl)
		b.log.Info("device disconnected: credentials changed while it connected", "device", user, "client", cl.ID)
		return
	}
	// Let in just before SetAccepting(false) swept the table: drop it now.
	if b.standby.Load() && b.dropOnStandby(cl) {
		b.log.Info("device disconnected: the broker went on standby while it connected", "device", user, "client", cl.ID)
	}
}

// OnWillSent forgets a Will mochi published.
func (h *hook) OnWillSent(cl *mqtt.Client, _ packets.Packet) {
	h.b.revoked.mu.Lock()
	delete(h.b.revoked.wills, cl)
	h.b.revoked.mu.Unlock()
}

// OnDisconnect publishes the Will mochi forgot for a connection that ended
// without the client's DISCONNECT, and counts oversized packets.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	b := h.b
	if errors.Is(err, packets.ErrPacketTooLarge) {
		b.oversize.Add(1)
		b.log.Debug("mqtt client sent a packet over the limit", "client", cl.ID, "max", b.cfg.MaxPacket)
	}
	w, owed := b.revoked.disconnected(cl)
	if !owed || b.ctx.Err() != nil { // the broker closing stops everyone; nobody is left to tell
		return
	}
	if err := b.srv.Publish(w.topic, w.payload, w.retain, w.qos); err != nil {
		b.log.Error("publishing the Last Will of a dropped device", "client", cl.ID, "topic", w.topic, "err", err)
		return
	}
	b.log.Debug("published the Last Will of a dropped device", "client", cl.ID, "topic", w.topic)
}
