package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// TestSystemDeviceBadInput: a provisioned device that sends garbage and
// impersonates another device changes nothing but the counters, and the
// system still plays.
func TestSystemDeviceBadInput(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2}) // rx-000 in a1, rx-001 in b1
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rogue", AreaID: "b1", Name: "rogue"})
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker(s.m.MQTTURL()).SetClientID("rogue").
		SetUsername("rogue").SetPassword(pw).SetProtocolVersion(4).SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("rogue connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	pub := func(topic string, qos byte, retained bool, payload string) {
		t.Helper()
		if tok := c.Publish(topic, qos, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	malformed0 := s.m.Fleet.Stats().Malformed
	refused0 := s.m.Broker.Stats().Refused

	pub(protocol.DeviceTopic("rogue", protocol.KindStatus), 1, true, fmt.Sprintf(`{"online":true,"boot":1,"ts":%d}`, time.Now().UnixMilli()))
	pub(protocol.DeviceTopic("rogue", protocol.KindTele), 0, false, `{"volume":"loud"`)
	pub(protocol.DeviceTopic("rogue", protocol.KindEvent), 1, false, `not json at all`)
	pub(protocol.DeviceTopic("rogue", protocol.KindAck), 1, false, `{"id":"never-sent","state":"done"}`)
	// Impersonation: rx-000's status and telemetry. QoS 0, since the broker
	// answers a refused QoS 1 publish by dropping the connection.
	pub(protocol.DeviceTopic("rx-000", protocol.KindStatus), 0, true, `{"online":false,"boot":99999999999999,"ts":1}`)
	pub(protocol.DeviceTopic("rx-000", protocol.KindTele), 0, false, `{"ts":1,"rssi":-120,"volume":0}`)
	// A valid telemetry last: once it is seen, everything before was handled.
	pub(protocol.DeviceTopic("rogue", protocol.KindTele), 0, false, `{"ts":1,"rssi":-77,"volume":33,"muted":false,"temp":40,"uptime":60}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.m.Fleet.DeviceState("rogue")
		if st.Telemetry != nil && st.Telemetry.Volume == 33 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rogue's valid telemetry never arrived: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.m.Fleet.Stats().Malformed - malformed0; got < 2 {
		t.Errorf("malformed payloads counted %d, want ≥ 2", got)
	}
	if st, _ := s.m.Fleet.DeviceState("rogue"); st.Malformed < 2 {
		t.Errorf("rogue's own malformed count is %d, want ≥ 2", st.Malformed)
	}
	if got := s.m.Broker.Stats().Refused - refused0; got < 2 {
		t.Errorf("broker refused %d impersonating publishes, want 2", got)
	}
	victim, _ := s.m.Fleet.DeviceState("rx-000")
	if !victim.Online {
		t.Error("an impersonated offline status took rx-000 offline")
	}
	if victim.Telemetry != nil && victim.Telemetry.RSSI == -120 {
		t.Error("impersonated telemetry was accepted for rx-000")
	}

	// Everything still works.
	med := s.upload(testSignal(2*time.Second), 48000)
	sess := s.play(med.ID, "a")
	s.finish(sess, med.Duration, "a")
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(sess.ID); float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
			t.Errorf("%s decoded %d of %d after the bad input", r.ID(), st.Decoded, med.Frames)
		}
	}
}
