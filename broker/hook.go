package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"time"

	"github.com/loa-broadcast/loa"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
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
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnSessionEstablished, mqtt.OnWillSent, mqtt.OnDisconnect}, []byte{b})
}

// OnConnectAuthenticate admits the controller and devices with valid
// credentials whose Last Will obeys the ACL and whose client id is not held
// by another account.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	user := string(pk.Connect.Username)
	log := b.log.With("client", cl.ID, "user", user, "remote", cl.Net.Remote)

	b.revoked.checking(cl, user)
	if !h.authenticate(user, pk.Connect.Password, log) {
		b.revoked.forget(cl)
		b.authFailures.Add(1)
		return false
	}
	if pk.Connect.WillFlag && !b.acl().allow(user, pk.Connect.WillTopic, true) {
		b.revoked.forget(cl)
		b.refused.Add(1)
		log.Debug("mqtt last will denied", "topic", pk.Connect.WillTopic)
		return false
	}
	// mochi lets a new connection take over any session with the same client
	// id; without this a device could knock another device off the broker.
	if prev, ok := b.srv.Clients.Get(cl.ID); ok && string(prev.Properties.Username) != user {
		b.revoked.forget(cl)
		b.refused.Add(1)
		log.Debug("mqtt client id held by another account", "holder", string(prev.Properties.Username))
		return false
	}
	b.revoked.admitted(cl, pk)
	b.connections.Add(1)
	log.Debug("mqtt client authenticated")
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
