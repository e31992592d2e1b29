package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestBenchOutage runs "loa bench outage" end to end at a tiny scale, so
// the benchmark cannot rot: every phase (media path down, MQTT down with
// the SMS trigger and its negative control, controller down) must give
// its figures, every receiver must sound, and nothing may play twice or
// sound a replayed or forged SMS. It never checks how fast anything was.
func TestBenchOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a controller and receivers through three outages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 4
	var out bytes.Buffer
	var errs lockedBuffer
	err := benchOutage(ctx, []string{"-receivers", "4", "-decode", "1", "-setup", "20s", "-programme", "4s", "-sms-rate", "20"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
	}
	if _, ok := last["missing_phases"]; ok {
		t.Errorf("a phase is missing: %s", lines[len(lines)-1])
	}
	want := map[string]float64{
		"receivers": n, "alert_sounded_media_down": n, "alert_sounded_mqtt_down": n, "sms_sent": n, "sms_reported": n,
		"programmes_from_cache": n, "double_plays": 0, "sms_rate_per_s": 20,
		// The negative control: each receiver refused its trigger sent
		// again and one forged, and sounded neither.
		"sms_negative_accepted": 0, "sms_replay_sounded": 0, "sms_forged_sounded": 0,
		"sms_refused_signature": n, "sms_refused_replayed": n,
	}
	for k, v := range want {
		got, ok := last[k].(float64)
		if !ok || got != v {
			t.Errorf("%s = %v, want %v", k, last[k], v)
		}
	}
	for _, k := range []string{"sms_trigger_ms_p50", "sms_trigger_ms_p99", "sms_alert_first_sound_ms_p99", "alert_first_sound_ms_p99_media_down"} {
		if got, ok := last[k].(float64); !ok || got <= 0 {
			t.Errorf("%s = %v, want a positive figure", k, last[k])
		}
	}
	t.Logf("stdout:\n%s", out.String())
}
