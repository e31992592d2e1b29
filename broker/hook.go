package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/loa-broadcast/loa"
)

// authTimeout bounds one credential check, so a slow store cannot pile up
// half-open connections.
const authTimeout = 10 * time.Second

// hook plugs authentication and the ACL into mochi.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "loa-auth" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnSessionEstablished, mqtt.OnWillSent, mqtt.OnDisconnect}, []byte{b})
}

// OnConnectAuthenticate admits the controller and devices with valid
// credentials, the client id their account may use and a Last Will that
// obeys the ACL. A refusal is held back by the account's back-off.
//
// A device's client id is its own id, so its new connection takes over
// its old one (mochi disconnects the old one, as MQTT specifies for a
// repeated client id: one live connection per device), and no other
// account can take it over: mochi lets a connection take over any
// session with its client id.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	user := string(pk.Connect.Username)
	log := b.log.With("client", cl.ID, "user", user, "remote", cl.Net.Remote)

	b.revoked.checking(cl, user)
	if !h.admit(cl, user, pk, log) {
		b.revoked.forget(cl)
		if d := b.backoff.failed(user); d > 0 {
			log.Debug("mqtt refusal held back", "delay", d)
			select {
			case <-time.After(d):
			case <-b.ctx.Done():
			}
		}
		return false
	}
	b.backoff.succeeded(user)
	h.retireOld(cl, log)
	b.gate.authenticated(cl.Net.Conn)
	b.revoked.admitted(cl, pk)
	b.connections.Add(1)
	log.Debug("mqtt client authenticated")
	return true
}

// retireWait bounds how long a new connection waits for its client id's
// old connection to be cleaned up.
const retireWait = 3 * time.Second

// retireOld closes the old connection of cl's client id, if it had a
// clean session, and waits until mochi has cleaned it up. mochi's clean-up
// of such a connection deletes its client id from the client table
// whoever holds it by then, and checks "taken over" without a lock: a
// device reconnecting while its dropped connection was being cleaned up
// was deleted with it, kept its subscriptions, and heard nothing more
// (publishes to an id not in the table are dropped). Waiting here, before
// mochi adds the new client, orders the two. A session kept for the new
// connection to inherit (clean=false) is never deleted so; mochi's
// takeover handles it.
func (h *hook) retireOld(cl *mqtt.Client, log *slog.Logger) {
	clients := h.b.srv.Clients
	old, ok := clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	p := &old.Properties
	if !(p.ProtocolVersion == 5 && p.Props.SessionExpiryInterval == 0 || p.ProtocolVersion < 5 && p.Clean) {
		return
	}
	old.Stop(packets.ErrSessionTakenOver)
	deadline := time.NewTimer(retireWait)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if cur, ok := clients.Get(cl.ID); !ok || cur != old {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			log.Warn("mqtt old connection of this client id not cleaned up in time; taking it over")
			return
		case <-h.b.ctx.Done():
			return
		}
	}
}

// admit applies the client-id rule, the credentials and the Will's ACL,
// counting each refusal.
func (h *hook) admit(cl *mqtt.Client, user string, pk packets.Packet, log *slog.Logger) bool {
	b := h.b
	if !h.authenticate(user, pk.Connect.Password, log) {
		b.authFailures.Add(1)
		return false
	}
	if !b.acl().clientID(user, cl.ID) {
		b.refused.Add(1)
		log.Debug("mqtt client id not this account's")
		return false
	}
	if pk.Connect.WillFlag && !b.acl().allow(user, pk.Connect.WillTopic, true) {
		b.refused.Add(1)
		log.Debug("mqtt last will denied", "topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

func (h *hook) authenticate(user string, password []byte, log *slog.Logger) bool {
	b := h.b
	switch {
	case user == "":
		log.Debug("mqtt anonymous connection refused")
		return false
	case user == b.cfg.ControllerUser:
		// Compare digests so the comparison time does not depend on the length.
		sum := sha256.Sum256(password)
		if subtle.ConstantTimeCompare(sum[:], b.ctrlPwHash[:]) != 1 {
			log.Debug("mqtt controller password refused")
			return false
		}
		return true
	}
	if err := loa.ValidateID("username", user); err != nil {
		log.Debug("mqtt username is not a device id", "err", err)
		return false
	}
	if len(password) == 0 {
		log.Debug("mqtt device without password refused")
		return false
	}
	ctx, cancel := context.WithTimeout(b.ctx, authTimeout)
	defer cancel()
	ok, err := b.cfg.Auth.CheckDeviceCredentials(ctx, user, string(password))
	if err != nil {
		log.Error("mqtt device credential check failed", "err", err)
		return false
	}
	if !ok {
		log.Debug("mqtt device credentials refused")
	}
	return ok
}

// OnACLCheck applies the ACL to every publish and subscription.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	b := h.b
	user := string(cl.Properties.Username)
	if b.acl().allow(user, topic, write) {
		return true
	}
	b.refused.Add(1)
	access := "subscribe"
	if write {
		access = "publish"
	}
	b.log.Debug("mqtt acl denied", "client", cl.ID, "user", user, "topic", topic, "access", access)
	return false
}

func (b *Broker) acl() acl { return acl{controller: b.cfg.ControllerUser} }
