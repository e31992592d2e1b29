package protocol

import (
	"reflect"
	"strings"
	"testing"
)

// PowerReport's fields are in a CONTRACT.md field table.
func TestContractPowerFields(t *testing.T) {
	_, documented := readContract(t)
	for name := range jsonFields(reflect.TypeOf(PowerReport{})) {
		if !documented[name] {
			t.Errorf("power field %q is not in a CONTRACT.md field table", name)
		}
	}
}

// A power report out of range refuses the whole telemetry; one without a
// required field too.
func TestDecodeTelemetryPower(t *testing.T) {
	tele := func(power string) string {
		return `{"ts":1,"rssi":-80,"volume":50,"muted":false,"temp":40,"uptime":1,"power":` + power + `}`
	}
	got, err := DecodeTelemetry([]byte(tele(`{"mains":false,"battery_pct":19,"runtime_min":30}`)))
	if err != nil || got.Power == nil || got.Power.Mains || got.Power.BatteryPct != 19 || got.Power.RuntimeMin != 30 {
		t.Fatalf("got %+v, %v", got.Power, err)
	}
	for power, want := range map[string]string{
		`{"mains":true,"battery_pct":101,"runtime_min":1}`:    "battery_pct",
		`{"mains":true,"battery_pct":-1,"runtime_min":1}`:     "battery_pct",
		`{"mains":true,"battery_pct":50,"runtime_min":-5}`:    "runtime_min",
		`{"mains":true,"battery_pct":50,"runtime_min":1e6}`:   "runtime_min",
		`{"battery_pct":50,"runtime_min":10}`:                 "mains",
		`{"mains":false,"runtime_min":10}`:                    "battery_pct",
		`{"mains":false,"battery_pct":50,"runtime_min":null}`: "runtime_min",
	} {
		if _, err := DecodeTelemetry([]byte(tele(power))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one naming %s", power, err, want)
		}
	}
}
