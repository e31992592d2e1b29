package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/loa-broadcast/loa/protocol"
)

// acl is the access policy of the wire contract. It is a pure function of
// the authenticated user name, so it is tested without a broker.
type acl struct {
	controller string // the controller's user name
}

// allow reports whether user may publish to (write) or subscribe to (!write)
// topic. The controller may use anything under loa/v1/, wildcards included.
// A device may publish only its own status, ack, tele and event, and
// subscribe only to its own cmd topic, spelled out exactly.
func (a acl) allow(user, topic string, write bool) bool {
	if user == a.controller {
		return strings.HasPrefix(topic, protocol.Prefix)
	}
	if !write {
		return topic == protocol.DeviceTopic(user, protocol.KindCmd)
	}
	id, kind, err := protocol.ParseDeviceTopic(topic)
	if err != nil || id != user {
		return false
	}
	switch kind {
	case protocol.KindStatus, protocol.KindAck, protocol.KindTele, protocol.KindEvent:
		return true
	}
	return false
}

// clientID reports whether user may connect with client id id. A device
// only with its own id, which must not be reserved; the controller with
// its account name, or that name, a '-' and its node's suffix (each node
// of a station has its own: "loa-controller-ab12").
func (a acl) clientID(user, id string) bool {
	if user == a.controller {
		return id == user || strings.HasPrefix(id, user+"-") && len(id) > len(user)+1
	}
	return id == user && !a.reserved(id)
}

// reserved reports whether id is a client id no device may hold: the
// controller's, and mochi's in-process client.
func (a acl) reserved(id string) bool {
	return id == a.controller || strings.HasPrefix(id, a.controller+"-") || id == mqtt.InlineClientId
}
