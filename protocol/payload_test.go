package protocol

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden payloads: the documented examples of the wire contract. A change
// to a payload type that breaks one of these breaks deployed receivers.
func TestGoldenPayloads(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden payloads in testdata: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		kind, _, _ := strings.Cut(name, ".")
		var got any
		switch kind {
		case "status":
			got, err = DecodeStatus(b)
		case "cmd":
			got, err = DecodeCommand(b)
		case "play":
			got, err = DecodePlayArgs(b)
		case "ack":
			got, err = DecodeAck(b)
		case "tele":
			got, err = DecodeTelemetry(b)
		case "event":
			got, err = DecodeEvent(b)
		default:
			t.Fatalf("%s: unknown kind", name)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// Re-encoding must give back the same JSON object (fields and values).
		var want, again map[string]any
		json.Unmarshal(b, &want)
		re, _ := json.Marshal(got)
		json.Unmarshal(re, &again)
		wj, _ := json.Marshal(want)
		aj, _ := json.Marshal(again)
		if string(wj) != string(aj) {
			t.Errorf("%s: round trip changed the payload:\n got %s\nwant %s", name, aj, wj)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	bad := map[string]func([]byte) error{
		``:                                func(b []byte) error { _, err := DecodeStatus(b); return err },
		`{"online":"yes"}`:                func(b []byte) error { _, err := DecodeStatus(b); return err },
		`{"online":true} {}`:              func(b []byte) error { _, err := DecodeStatus(b); return err },
		`{"id":"1","op":"dance","exp":5}`: func(b []byte) error { _, err := DecodeCommand(b); return err },
		`{"id":"","op":"play","exp":5}`:   func(b []byte) error { _, err := DecodeCommand(b); return err },
		`{"id":"1","op":"play"}`:          func(b []byte) error { _, err := DecodeCommand(b); return err },
		`{"id":"1","state":"maybe"}`:      func(b []byte) error { _, err := DecodeAck(b); return err },
		`{"volume":101}`:                  func(b []byte) error { _, err := DecodeTelemetry(b); return err },
		`{"level":-1}`:                    func(b []byte) error { _, err := DecodeVolumeArgs(b); return err },
		`{"session":"s","addr":"a:1","token":"00"}`: func(b []byte) error { _, err := DecodePlayArgs(b); return err },
		`{"type":""}`: func(b []byte) error { _, err := DecodeEvent(b); return err },
		`{"ts":1,"x":"` + strings.Repeat("a", MaxPayload) + `"}`: func(b []byte) error { _, err := DecodeTelemetry(b); return err },
	}
	for in, dec := range bad {
		if err := dec([]byte(in)); err == nil {
			t.Errorf("accepted %.60q", in)
		}
	}
}

func TestTopics(t *testing.T) {
	topic := DeviceTopic("loa-0001", KindStatus)
	if topic != "loa/v1/dev/loa-0001/status" {
		t.Fatalf("DeviceTopic = %q", topic)
	}
	id, kind, err := ParseDeviceTopic(topic)
	if err != nil || id != "loa-0001" || kind != KindStatus {
		t.Fatalf("ParseDeviceTopic = %q %q %v", id, kind, err)
	}
	for _, bad := range []string{"loa/v2/dev/a/status", "loa/v1/dev//status", "loa/v1/dev/a/status/x",
		"loa/v1/dev/a/bogus", "loa/v1/dev/+/status", "loa/v1/dev/a", "other"} {
		if _, _, err := ParseDeviceTopic(bad); err == nil {
			t.Errorf("ParseDeviceTopic(%q) accepted", bad)
		}
	}
}

func FuzzDecoders(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","op":"play","exp":1,"args":{"session":"s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// None may panic; whatever decodes must re-encode.
		if s, err := DecodeStatus(b); err == nil {
			json.Marshal(s)
		}
		if c, err := DecodeCommand(b); err == nil {
			if c.ID == "" || !knownOps[c.Op] {
				t.Fatalf("invalid command accepted: %+v", c)
			}
		}
		if p, err := DecodePlayArgs(b); err == nil && len(p.Token) != 2*TokenLen {
			t.Fatalf("bad token accepted: %q", p.Token)
		}
		if a, err := DecodeAck(b); err == nil && a.ID == "" {
			t.Fatal("ack without id accepted")
		}
		DecodeTelemetry(b)
		DecodeEvent(b)
		DecodeVolumeArgs(b)
		DecodeStopArgs(b)
	})
}

func FuzzParseDeviceTopic(f *testing.F) {
	f.Add("loa/v1/dev/a/status")
	f.Add("loa/v1/dev/+/cmd")
	f.Fuzz(func(t *testing.T, topic string) {
		id, kind, err := ParseDeviceTopic(topic)
		if err != nil {
			return
		}
		if DeviceTopic(id, kind) != topic {
			t.Fatalf("%q parsed to %q %q which does not rebuild it", topic, id, kind)
		}
	})
}
