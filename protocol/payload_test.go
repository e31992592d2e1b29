package protocol

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
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
		dec, ok := decoders[kind]
		if !ok {
			t.Fatalf("%s: unknown kind", name)
		}
		got, err := dec(b)
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

// decoders maps a payload kind (a golden file's name up to its first dot,
// a CONTRACT.md block's kind) to its decoder.
var decoders = map[string]func([]byte) (any, error){
	"status":     func(b []byte) (any, error) { return DecodeStatus(b) },
	"cmd":        func(b []byte) (any, error) { return DecodeCommand(b) },
	"play":       func(b []byte) (any, error) { return DecodePlayArgs(b) },
	"stop":       func(b []byte) (any, error) { return DecodeStopArgs(b) },
	"volume":     func(b []byte) (any, error) { return DecodeVolumeArgs(b) },
	"mute":       func(b []byte) (any, error) { return DecodeMuteArgs(b) },
	"amp":        func(b []byte) (any, error) { return DecodeAmpArgs(b) },
	"test":       func(b []byte) (any, error) { return DecodeTestArgs(b) },
	"testresult": func(b []byte) (any, error) { return DecodeTestResult(b) },
	"reboot":     func(b []byte) (any, error) { return DecodeRebootArgs(b) },
	"config":     func(b []byte) (any, error) { return DecodeConfigArgs(b) },
	"ack":        func(b []byte) (any, error) { return DecodeAck(b) },
	"tele":       func(b []byte) (any, error) { return DecodeTelemetry(b) },
	"event":      func(b []byte) (any, error) { return DecodeEvent(b) },
	"firmware":   func(b []byte) (any, error) { return DecodeFirmwareArgs(b) },
	"fwprogress": func(b []byte) (any, error) { return decodeStrictAs[FirmwareProgress]("firmware progress", b) },
	"fwresult":   func(b []byte) (any, error) { return decodeStrictAs[FirmwareResult]("firmware result", b) },
	"enrol":      func(b []byte) (any, error) { return DecodeEnrolResponse(b) },
}

// decodeStrictAs decodes a result type that has no decoder of its own.
func decodeStrictAs[T any](kind string, b []byte) (T, error) {
	var v T
	err := decodeStrict(kind, b, &v)
	return v, err
}

func TestDecodeArgsRejects(t *testing.T) {
	bad := map[string][]string{
		"mute":       {`{}`, `{"muted":null}`, `{"muted":1}`, `{"muted":true,"x":1}`, ``},
		"amp":        {`{}`, `{"on":"yes"}`, `{"on":true,"volume":3}`},
		"test":       {`{"tone_hz":99}`, `{"tone_hz":8001}`, `{"duration_ms":99}`, `{"duration_ms":10001}`, `{"tone_hz":-5}`, `{"tone":1000}`, `[]`},
		"testresult": {`{}`, `{"level_db":-3}`, `{"passed":true}`, `{"level_db":"loud","passed":true}`},
		"reboot":     {`{"now":true}`, `[]`, `{} {}`},
		"config": {`{}`, `{"tele_interval_s":30}`, `{"delay_ms":200}`, `{"tele_interval_s":4,"delay_ms":0}`,
			`{"tele_interval_s":3601,"delay_ms":0}`, `{"tele_interval_s":30,"delay_ms":-1}`, `{"tele_interval_s":30,"delay_ms":10001}`,
			`{"tele_interval_s":30,"delay_ms":0,"boot_volume":101}`, `{"tele_interval_s":30,"delay_ms":0,"boot_volume":-1}`,
			`{"tele_interval_s":30,"delay_ms":0,"colour":"red"}`},
	}
	for kind, ins := range bad {
		for _, in := range ins {
			if v, err := decoders[kind]([]byte(in)); err == nil {
				t.Errorf("%s accepted %q as %+v", kind, in, v)
			}
		}
	}
}

func TestDecodeArgsDefaults(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"tone_hz":0}`} {
		a, err := DecodeTestArgs([]byte(in))
		if err != nil || a != (TestArgs{ToneHz: 1000, DurationMs: 2000}) {
			t.Errorf("DecodeTestArgs(%q) = %+v, %v", in, a, err)
		}
	}
	if _, err := DecodeRebootArgs(nil); err != nil {
		t.Errorf("reboot without args: %v", err)
	}
	c, err := DecodeConfigArgs([]byte(`{"tele_interval_s":5,"delay_ms":0}`))
	if err != nil || c.BootVolume != nil {
		t.Errorf("config with only required fields = %+v, %v", c, err)
	}
	a, err := DecodeAck([]byte(`{"id":"x","state":"done","result":{"level_db":-6.02,"passed":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeTestResult(a.Result)
	if err != nil || r != (TestResult{LevelDB: -6.02, Passed: true}) {
		t.Errorf("test result = %+v, %v", r, err)
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
		`{}`:          func(b []byte) error { _, err := DecodeTelemetry(b); return err },
		`null`:        func(b []byte) error { _, err := DecodeStatus(b); return err },
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
	f.Add([]byte(`{"tone_hz":99999,"duration_ms":-1}`))
	f.Add([]byte(`{"tele_interval_s":4,"delay_ms":0,"boot_volume":null}`))
	f.Add([]byte(`{"muted":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"ts":1,"rssi":-80,"volume":50,"muted":false,"temp":40,"uptime":1,"stream":{"received":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// None may panic; whatever decodes must re-encode.
		if s, err := DecodeStatus(b); err == nil {
			json.Marshal(s)
		}
		if c, err := DecodeCommand(b); err == nil {
			if c.ID == "" || !KnownOp(c.Op) {
				t.Fatalf("invalid command accepted: %+v", c)
			}
		}
		if p, err := DecodePlayArgs(b); err == nil && len(p.Token) != 2*TokenLen {
			t.Fatalf("bad token accepted: %q", p.Token)
		}
		if a, err := DecodeAck(b); err == nil && a.ID == "" {
			t.Fatal("ack without id accepted")
		}
		// What a receiver's report decodes to re-encodes to a payload that
		// decodes to the same value: nothing required was left out.
		reencodes(t, b, DecodeTelemetry)
		reencodes(t, b, DecodeEvent)
		reencodes(t, b, DecodeStatus)
		reencodes(t, b, DecodeAck)
		DecodeVolumeArgs(b)
		DecodeStopArgs(b)
		DecodeMuteArgs(b)
		DecodeAmpArgs(b)
		DecodeRebootArgs(b)
		DecodeTestResult(b)
		if a, err := DecodeTestArgs(b); err == nil && (a.ToneHz < TestToneMinHz || a.ToneHz > TestToneMaxHz ||
			a.DurationMs < TestMinDurationMs || a.DurationMs > TestMaxDurationMs) {
			t.Fatalf("test args out of range accepted: %+v", a)
		}
		if c, err := DecodeConfigArgs(b); err == nil && (c.TeleIntervalS < 5 || c.TeleIntervalS > 3600 || c.DelayMs < 0 || c.DelayMs > 10000) {
			t.Fatalf("config out of range accepted: %+v", c)
		}
	})
}

func reencodes[T any](t *testing.T, b []byte, dec func([]byte) (T, error)) {
	t.Helper()
	v, err := dec(b)
	if err != nil {
		return
	}
	re, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T from %q does not encode: %v", v, b, err)
	}
	again, err := dec(re)
	if err != nil || !reflect.DeepEqual(v, again) {
		t.Fatalf("%q decoded to %+v, which re-encodes to %s: %+v, %v", b, v, re, again, err)
	}
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
