package devices

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// valid reports whether handle must accept the message, by the contract's
// own parsers.
func valid(topic string, payload []byte) bool {
	id, kind, err := protocol.ParseDeviceTopic(topic)
	if err != nil || loa.ValidateID("id", id) != nil {
		return false
	}
	switch kind {
	case protocol.KindStatus:
		_, err = protocol.DecodeStatus(payload)
	case protocol.KindTele:
		_, err = protocol.DecodeTelemetry(payload)
	case protocol.KindAck:
		_, err = protocol.DecodeAck(payload)
	case protocol.KindEvent:
		_, err = protocol.DecodeEvent(payload)
	default:
		return false
	}
	return err == nil
}

func FuzzHandle(f *testing.F) {
	seeds := []struct{ topic, payload string }{
		{"loa/v1/dev/dev-1/status", `{"online":true,"boot":5,"ts":1}`},
		{"loa/v1/dev/dev-1/status", `{"online":false,"boot":4,"ts":1}`},
		{"loa/v1/dev/dev-2/status", `{"online":true,"boot":1,"ts":1}`},
		{"loa/v1/dev/dev-1/status", `{"online":true,"boot":5,"conn":2,"ts":1}`},
		{"loa/v1/dev/dev-1/status", `{"online":false,"boot":5,"conn":18446744073709551615,"ts":1}`},
		{"loa/v1/dev/dev-1/tele", `{"ts":1,"rssi":-70,"volume":40,"muted":false,"temp":40,"uptime":9,"stream":{"received":9,"lost":1,"late":0,"concealed":0,"fec_recovered":0,"played":9,"decoded":9,"jitter_ms":1}}`},
		{"loa/v1/dev/dev-1/ack", `{"id":"c1","state":"done"}`},
		{"loa/v1/dev/dev-2/ack", `{"id":"c1","state":"failed"}`},
		{"loa/v1/dev/dev-1/event", `{"type":"played","ts":1,"session":"s"}`},
		{"loa/v1/dev/dev-1/cmd", `{"id":"x","op":"play","exp":1}`},
		{"loa/v1/dev/+/status", `{}`},
		{"loa/v1/dev//tele", `{}`},
		{"loa/v1/dev/dev-1/tele", `{"volume":-1}`},
		{"loa/v1/dev/dev-1/status", `{"online":true}garbage`},
		{"x", ""},
	}
	for _, s := range seeds {
		f.Add(s.topic, []byte(s.payload), false)
	}
	seen := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := seen.Add(time.Hour)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, retained bool) {
		fl := linkedFleet(Config{
			States: &recordingWriter{},
			Now:    func() time.Time { return now },
			Initial: []loa.DeviceState{
				{ID: "dev-1", Online: true, Boot: 5, OnlineSince: seen, LastSeen: seen, Telemetry: &loa.Telemetry{Volume: 30}},
				{ID: "dev-2", Boot: 1},
			},
		})
		fl.OnEvent(func(string, protocol.Event) {})
		fl.OnPresence(func(loa.DeviceState) {})
		fl.pending["c1"] = &pending{device: "dev-1", ch: make(chan protocol.Ack, 1)}
		fl.results.put(loa.CommandResult{ID: "c1", Device: "dev-1", Op: protocol.OpTest, State: loa.CommandSent, SentAt: seen})
		before := fl.States()
		beforeStats := fl.Stats()

		fl.handle(topic, payload, retained)

		after := fl.States()
		stats := fl.Stats()
		online := 0
		for _, st := range after {
			if st.Online {
				online++
			}
		}
		if online != stats.Online {
			t.Fatalf("Stats().Online = %d, %d devices online", stats.Online, online)
		}
		if valid(topic, payload) {
			return
		}
		if id, kind, err := protocol.ParseDeviceTopic(topic); err == nil && kind == protocol.KindCmd && loa.ValidateID("id", id) == nil {
			if stats != beforeStats {
				t.Fatalf("a command echo changed stats: %+v → %+v", beforeStats, stats)
			}
		} else if stats.Malformed != beforeStats.Malformed+1 {
			t.Fatalf("Malformed %d → %d for invalid input", beforeStats.Malformed, stats.Malformed)
		}
		if len(after) != len(before) {
			t.Fatalf("invalid input changed the devices: %v → %v", ids(before), ids(after))
		}
		bumped := 0
		for i := range before {
			b, a := before[i], after[i]
			if a.Malformed == b.Malformed+1 {
				bumped++
				a.Malformed = b.Malformed
			}
			if !equalState(b, a) {
				t.Fatalf("invalid input changed state:\n%+v\n%+v", b, a)
			}
		}
		if bumped > 1 {
			t.Fatalf("one message counted on %d devices", bumped)
		}
		if r, _ := fl.CommandResult("c1"); r.State != loa.CommandSent {
			j, _ := json.Marshal(r)
			t.Fatalf("invalid input changed a command: %s", j)
		}
		if len(fl.pending) != 1 {
			t.Fatal("invalid input resolved a pending command")
		}
	})
}

func ids(states []loa.DeviceState) []string {
	out := make([]string, len(states))
	for i, st := range states {
		out[i] = st.ID
	}
	return out
}
