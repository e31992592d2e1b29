package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// opArgs checks the args of every op a receiver understands, as the
// receiver decodes them; empty args are a command without any.
var opArgs = map[string]func([]byte) error{
	OpPlay:     func(b []byte) error { _, err := DecodePlayArgs(b); return err },
	OpStop:     func(b []byte) error { _, err := DecodeStopArgs(b); return err },
	OpVolume:   func(b []byte) error { _, err := DecodeVolumeArgs(b); return err },
	OpMute:     func(b []byte) error { _, err := DecodeMuteArgs(b); return err },
	OpAmp:      func(b []byte) error { _, err := DecodeAmpArgs(b); return err },
	OpTest:     func(b []byte) error { _, err := DecodeTestArgs(b); return err },
	OpReboot:   func(b []byte) error { _, err := DecodeRebootArgs(b); return err },
	OpFirmware: func(b []byte) error { _, err := DecodeFirmwareArgs(b); return err },
	OpConfig:   func(b []byte) error { _, err := DecodeConfigArgs(b); return err },
	// Contract v2, receivers that announce CapCache.
	OpCache:      func(b []byte) error { _, err := DecodeCacheArgs(b); return err },
	OpPlayStored: func(b []byte) error { _, err := DecodePlayStoredArgs(b); return err },
}

// operatorOps are the ops an operator sends devices directly, one device
// or a whole area: play and stop belong to sessions, firmware to rollouts.
var operatorOps = []string{OpVolume, OpMute, OpAmp, OpTest, OpReboot, OpConfig}

// KnownOp reports whether receivers understand op.
func KnownOp(op string) bool { return opArgs[op] != nil }

// OperatorOp reports whether op is one an operator may send directly.
func OperatorOp(op string) bool { return slices.Contains(operatorOps, op) }

// OperatorOps lists the operator ops for messages: "volume, mute, …, reboot
// or config".
func OperatorOps() string {
	n := len(operatorOps)
	return strings.Join(operatorOps[:n-1], ", ") + " or " + operatorOps[n-1]
}

// CheckArgs checks args for op as the receiver will decode them, so bad
// args are refused before anything is sent.
func CheckArgs(op string, args []byte) error {
	check := opArgs[op]
	if check == nil {
		return fmt.Errorf("unknown op %q", op)
	}
	return check(args)
}

// MuteArgs are the args of a mute command. A muted receiver keeps receiving
// and counting its stream but plays silence; emergency sessions override it.
type MuteArgs struct {
	Muted bool `json:"muted"` // required
}

// AmpArgs are the args of an amp command: switch the amplifier's power relay.
type AmpArgs struct {
	On bool `json:"on"` // required
}

// Test tone limits and defaults.
const (
	TestToneMinHz     = 100
	TestToneMaxHz     = 8000
	TestToneDefaultHz = 1000
	TestMinDurationMs = 100
	TestMaxDurationMs = 10000
	TestDefaultMs     = 2000
	TestPassLevelDBFS = -40.0 // a test passes when the measured level is above this
)

// TestArgs are the args of a test command: play a tone through the
// amplifier and measure it. Absent (or zero) fields take their defaults.
type TestArgs struct {
	ToneHz     int `json:"tone_hz"`     // 100–8000, default 1000
	DurationMs int `json:"duration_ms"` // 100–10000, default 2000
}

// TestResult is the Result of the final ack of a test command.
type TestResult struct {
	LevelDB float64 `json:"level_db"` // measured RMS level, dBFS
	Passed  bool    `json:"passed"`
}

// RebootArgs are the (empty) args of a reboot command. The receiver acks
// "done", then drops its connection (its Will publishes offline) and comes
// back with Status.Boot increased.
type RebootArgs struct{}

// ConfigArgs are the args of a config command. TeleIntervalS and DelayMs
// are required; the pointer fields are optional and leave the setting
// unchanged when absent.
type ConfigArgs struct {
	TeleIntervalS int  `json:"tele_interval_s"`       // telemetry period, 5–3600 s
	DelayMs       int  `json:"delay_ms"`              // default playout delay D, 0–10000 ms
	BootVolume    *int `json:"boot_volume,omitempty"` // volume after boot, 0–100
}

// decodeStrict is decode that also refuses unknown fields, for args whose
// silent misreading would leave a receiver misconfigured.
func decodeStrict(kind string, b []byte, v any) error {
	if err := decode(kind, b, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

// present reports which top-level keys the JSON object b has.
func present(b []byte) map[string]bool {
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = string(v) != "null"
	}
	return out
}

// DecodeMuteArgs parses mute args; muted is required.
func DecodeMuteArgs(b []byte) (MuteArgs, error) {
	var a MuteArgs
	if err := decodeStrict("mute", b, &a); err != nil {
		return MuteArgs{}, err
	}
	if !present(b)["muted"] {
		return MuteArgs{}, errors.New("mute: muted is required")
	}
	return a, nil
}

// DecodeAmpArgs parses amp args; on is required.
func DecodeAmpArgs(b []byte) (AmpArgs, error) {
	var a AmpArgs
	if err := decodeStrict("amp", b, &a); err != nil {
		return AmpArgs{}, err
	}
	if !present(b)["on"] {
		return AmpArgs{}, errors.New("amp: on is required")
	}
	return a, nil
}

// DecodeTestArgs parses and checks test args, filling in defaults. Empty
// args (a command without args) mean all defaults.
func DecodeTestArgs(b []byte) (TestArgs, error) {
	var a TestArgs
	if len(b) > 0 {
		if err := decodeStrict("test", b, &a); err != nil {
			return TestArgs{}, err
		}
	}
	if a.ToneHz == 0 {
		a.ToneHz = TestToneDefaultHz
	}
	if a.DurationMs == 0 {
		a.DurationMs = TestDefaultMs
	}
	if a.ToneHz < TestToneMinHz || a.ToneHz > TestToneMaxHz {
		return TestArgs{}, fmt.Errorf("test: tone_hz %d outside %d..%d", a.ToneHz, TestToneMinHz, TestToneMaxHz)
	}
	if a.DurationMs < TestMinDurationMs || a.DurationMs > TestMaxDurationMs {
		return TestArgs{}, fmt.Errorf("test: duration_ms %d outside %d..%d", a.DurationMs, TestMinDurationMs, TestMaxDurationMs)
	}
	return a, nil
}

// DecodeTestResult parses the Result of a test ack.
func DecodeTestResult(b []byte) (TestResult, error) {
	var r TestResult
	if err := decodeStrict("test result", b, &r); err != nil {
		return TestResult{}, err
	}
	p := present(b)
	if !p["level_db"] || !p["passed"] {
		return TestResult{}, errors.New("test result: level_db and passed are required")
	}
	return r, nil
}

// DecodeRebootArgs accepts empty args or an empty object.
func DecodeRebootArgs(b []byte) (RebootArgs, error) {
	if len(b) == 0 {
		return RebootArgs{}, nil
	}
	var a RebootArgs
	if err := decodeStrict("reboot", b, &a); err != nil {
		return RebootArgs{}, err
	}
	return a, nil
}

// DecodeConfigArgs parses and checks config args; unknown fields are
// refused, so a receiver never acks done for a setting it did not apply.
func DecodeConfigArgs(b []byte) (ConfigArgs, error) {
	var a ConfigArgs
	if err := decodeStrict("config", b, &a); err != nil {
		return ConfigArgs{}, err
	}
	p := present(b)
	switch {
	case !p["tele_interval_s"] || !p["delay_ms"]:
		return ConfigArgs{}, errors.New("config: tele_interval_s and delay_ms are required")
	case a.TeleIntervalS < 5 || a.TeleIntervalS > 3600:
		return ConfigArgs{}, fmt.Errorf("config: tele_interval_s %d outside 5..3600", a.TeleIntervalS)
	case a.DelayMs < 0 || a.DelayMs > 10000:
		return ConfigArgs{}, fmt.Errorf("config: delay_ms %d outside 0..10000", a.DelayMs)
	case a.BootVolume != nil && (*a.BootVolume < 0 || *a.BootVolume > 100):
		return ConfigArgs{}, fmt.Errorf("config: boot_volume %d outside 0..100", *a.BootVolume)
	}
	return a, nil
}
