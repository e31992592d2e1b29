// Package protocol is the wire contract between the Loa controller and its
// receivers: MQTT topics and JSON payloads (version 1), and the RTP/RTCP
// profile of the audio stream. It imports only the standard library, so the
// firmware simulator (and real firmware authors) can depend on it alone.
package protocol

import (
	"fmt"
	"strings"
)

// Version is the contract version carried in every topic.
const Version = "v1"

// Prefix starts every topic of this contract.
const Prefix = "loa/" + Version + "/"

// Topic kinds under dev/{id}/.
const (
	KindStatus = "status" // dev→ctl, QoS 1, retained; offline form is the Last Will
	KindCmd    = "cmd"    // ctl→dev, QoS 1
	KindAck    = "ack"    // dev→ctl, QoS 1
	KindTele   = "tele"   // dev→ctl, QoS 0
	KindEvent  = "event"  // dev→ctl, QoS 1
)

// QoS per kind, as the contract fixes them.
var QoS = map[string]byte{KindStatus: 1, KindCmd: 1, KindAck: 1, KindTele: 0, KindEvent: 1}

// DeviceTopic returns loa/v1/dev/{id}/{kind}.
func DeviceTopic(id, kind string) string { return Prefix + "dev/" + id + "/" + kind }

// DeviceFilter returns the subscription filter for one kind from every
// device, e.g. loa/v1/dev/+/status.
func DeviceFilter(kind string) string { return Prefix + "dev/+/" + kind }

// ParseDeviceTopic splits loa/v1/dev/{id}/{kind}. It fails on any other
// shape, on an empty id, and on ids with MQTT wildcard characters.
func ParseDeviceTopic(topic string) (id, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix+"dev/")
	if !ok {
		return "", "", fmt.Errorf("topic %q: not under %sdev/", topic, Prefix)
	}
	id, kind, ok = strings.Cut(rest, "/")
	if !ok || id == "" || kind == "" || strings.Contains(kind, "/") {
		return "", "", fmt.Errorf("topic %q: want %sdev/{id}/{kind}", topic, Prefix)
	}
	if strings.ContainsAny(id, "+#") {
		return "", "", fmt.Errorf("topic %q: wildcard in device id", topic)
	}
	if _, known := QoS[kind]; !known {
		return "", "", fmt.Errorf("topic %q: unknown kind %q", topic, kind)
	}
	return id, kind, nil
}
