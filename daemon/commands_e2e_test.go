package daemon

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// command sends one command through the API and returns its result.
func (s *system) command(id, op string, args any) (loa.CommandResult, error) {
	var res loa.CommandResult
	body := map[string]any{"op": op}
	if args != nil {
		body["args"] = args
	}
	err := s.api.JSON(context.Background(), "POST", "/api/v1/devices/"+id+"/commands", body, &res)
	return res, err
}

// waitTelemetry polls the API until the device's telemetry matches.
func (s *system) waitTelemetry(id, what string, match func(*loa.Telemetry) bool) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var v api.DeviceView
		if err := s.api.JSON(context.Background(), "GET", "/api/v1/devices/"+id, nil, &v); err != nil {
			s.t.Fatal(err)
		}
		if v.State != nil && v.State.Telemetry != nil && match(v.State.Telemetry) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s never reported %s: %+v", id, what, v.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every operator command through the API, each with the receiver's
// observable effect: mute, amp, test (passing, and failing while muted),
// config (its boot volume shows after a reboot), reboot (boot+1, back
// online, boot state restored). Bad args are refused before anything is
// sent.
func TestSystemEachCommandEndToEnd(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1, tele: 200 * time.Millisecond})
	r := s.fleet.Receivers()[0]
	id := r.ID()
	done := func(op string, args any) loa.CommandResult {
		t.Helper()
		res, err := s.command(id, op, args)
		if err != nil || res.State != protocol.AckDone || res.ID == "" || res.DoneAt.IsZero() {
			t.Fatalf("%s %v: %+v, %v; want done", op, args, res, err)
		}
		return res
	}

	done("mute", map[string]bool{"muted": true})
	if !r.Muted() {
		t.Error("mute: the receiver is not muted")
	}
	s.waitTelemetry(id, "muted", func(tl *loa.Telemetry) bool { return tl.Muted })
	// A speaker test while muted measures silence: failed, with the
	// receiver's reason, as an error the API maps.
	_, err := s.command(id, "test", map[string]int{"duration_ms": 100})
	if ae, ok := err.(*api.ClientError); !ok || ae.Status < 400 || !strings.Contains(ae.Message, "below the pass level") {
		t.Errorf("test while muted: %v, want a failure naming the level", err)
	}
	done("mute", map[string]bool{"muted": false})
	s.waitTelemetry(id, "unmuted", func(tl *loa.Telemetry) bool { return !tl.Muted })
	done("test", map[string]int{"duration_ms": 100, "tone_hz": 440})

	done("amp", map[string]bool{"on": false})
	if r.Amp() {
		t.Error("amp off: the relay is still on")
	}
	done("amp", map[string]bool{"on": true})
	if !r.Amp() {
		t.Error("amp on: the relay is still off")
	}

	done("volume", map[string]int{"level": 20})
	done("config", map[string]any{"tele_interval_s": 5, "delay_ms": 250, "boot_volume": 55})
	if v := r.Volume(); v != 20 {
		t.Errorf("config changed the running volume to %d", v)
	}

	boot := r.Boot()
	done("reboot", nil)
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := s.m.Fleet.DeviceState(id)
		if st.Online && st.Boot == boot+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never back online with boot %d: %+v", boot+1, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := r.Volume(); v != 55 || r.Muted() || !r.Amp() {
		t.Errorf("after reboot: volume %d muted %v amp %v; want the configured boot volume 55, unmuted, amp on", v, r.Muted(), r.Amp())
	}
	waitOnlineAPI(t, s.api, id, true)

	// Bad args are refused by the API, naming them, and reach no receiver.
	for _, c := range []struct {
		op   string
		args any
	}{
		{"mute", nil},
		{"amp", map[string]string{"on": "yes"}},
		{"test", map[string]int{"tone_hz": 20000}},
		{"reboot", map[string]bool{"now": true}},
		{"config", map[string]any{"tele_interval_s": 30, "delay_ms": 0, "colour": "red"}},
		{"volume", map[string]int{"level": -1}},
	} {
		_, err := s.command(id, c.op, c.args)
		if ae, ok := err.(*api.ClientError); !ok || ae.Status != 400 || !strings.Contains(ae.Message, "args") {
			t.Errorf("%s %v: %v, want 400 naming args", c.op, c.args, err)
		}
	}
	if st := s.m.Fleet.Stats(); st.Commands != 9 {
		t.Errorf("the fleet sent %d commands, want the 9 good ones", st.Commands)
	}
}

// An ack for a command id the controller never sent is ignored and
// counted; the device's state does not move.
func TestSystemAckForUnknownCommand(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 0})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-acks", AreaID: "a1", Name: "acks"})
	if err != nil {
		t.Fatal(err)
	}
	d := loatest.ConnectDevice(t, s.m.MQTTURL(), loatest.DeviceConfig{ID: "rx-acks", Password: pw, ClientID: "rx-acks", Boot: 1, Conn: 1})
	waitOnlineAPI(t, s.api, "rx-acks", true)
	before, _ := s.m.Fleet.DeviceState("rx-acks")
	unknown := s.m.Fleet.Stats().UnknownAcks
	publishAck(t, d.Client(), "rx-acks", protocol.Ack{ID: "never-sent", State: protocol.AckDone})
	// A marker the fleet handles after the ack (same connection, QoS 1).
	tele, _ := json.Marshal(protocol.Telemetry{Volume: 33})
	if tok := d.Client().Publish(protocol.DeviceTopic("rx-acks", protocol.KindTele), 1, false, tele); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	s.waitTelemetry("rx-acks", "the marker", func(tl *loa.Telemetry) bool { return tl.Volume == 33 })
	if got := s.m.Fleet.Stats().UnknownAcks; got != unknown+1 {
		t.Errorf("unknown acks %d, want %d", got, unknown+1)
	}
	var metrics string
	if err := s.api.Do(ctx, "GET", "/metrics", "", nil, &metrics); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, "loa_device_unknown_acks_total 1") {
		t.Error("/metrics does not count the unknown ack")
	}
	after, _ := s.m.Fleet.DeviceState("rx-acks")
	if after.Malformed != before.Malformed || after.Boot != before.Boot || !after.Online {
		t.Errorf("state moved: %+v → %+v", before, after)
	}
}

func publishAck(t *testing.T, c mqtt.Client, id string, a protocol.Ack) {
	t.Helper()
	b, _ := json.Marshal(a)
	if tok := c.Publish(protocol.DeviceTopic(id, protocol.KindAck), 1, false, b); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("publish ack: %v", tok.Error())
	}
}
