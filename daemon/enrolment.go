package daemon

import (
	"crypto/ed25519"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

var (
	_ api.ClaimService = (*station.Enrolment)(nil)
	_ api.Enroller     = (*station.Enrolment)(nil)
)

// enrolment returns the enrolment service: receivers are told the broker
// and CA of enrolEndpoints, and a swap drops the old unit on the embedded
// broker.
func (m *Main) enrolment() *station.Enrolment {
	cfg := station.EnrolmentConfig{DB: m.DB, Endpoints: enrolEndpoints{m}, FirmwareURL: m.Config.FirmwareURL,
		StationKey: m.StationKey.Public().(ed25519.PublicKey), Logger: m.Logger.With("component", "enrolment")}
	if m.Broker != nil { // a nil *broker.Broker would be a non-nil interface
		cfg.Broker = m.Broker
	}
	return station.NewEnrolment(cfg)
}

// enrolEndpoints is what enrolling receivers are told: -device-mqtt-url
// (default the controller's own TLS broker URL, else its plain one) and the
// station CA certificate.
type enrolEndpoints struct{ m *Main }

func (e enrolEndpoints) DeviceMQTTURL() string {
	if e.m.Config.DeviceMQTTURL != "" {
		return e.m.Config.DeviceMQTTURL
	}
	if u := e.m.MQTTTLSURL(); u != "" {
		return u
	}
	return e.m.MQTTURL()
}

// DeviceMQTTURLs is every controller node's device broker, this one's
// first; nil on a single controller.
func (e enrolEndpoints) DeviceMQTTURLs() []string {
	cl := e.m.Config.Cluster
	if !cl.Enabled() {
		return nil
	}
	out := []string{e.DeviceMQTTURL()}
	for _, p := range cl.Peers {
		if p.ID != cl.NodeID && !p.Witness && p.MQTT != "" && len(out) < protocol.MaxMQTTURLs {
			out = append(out, p.MQTT)
		}
	}
	return out
}

func (e enrolEndpoints) CACertPEM() ([]byte, error) {
	if e.m.PKI == nil {
		return nil, nil // no station CA: plain MQTT
	}
	return e.m.PKI.CACertPEM(), nil
}
