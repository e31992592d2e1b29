package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

// A technician acknowledges an alarm of their commune with a note: who,
// when and the note are on the alarm, which stays active, and in the
// audit log. Another commune's alarm is not found, a cleared one is a
// conflict, an operator may not, and a bad note changes nothing.
func TestAlarmAcknowledge(t *testing.T) {
	e := newEnv(t)
	e.alarms.raise("al1", "dev-a1", "a-1", loa.AlarmAmpFault)
	e.alarms.raise("al2", "dev-b1", "b-1", loa.AlarmTemperature)
	e.alarms.raise("al3", "dev-a1", "a-1", loa.AlarmOffline)
	e.alarms.clear("al3")

	wantError(t, e.do("POST", "/api/v1/alarms/al1/ack", e.techA, map[string]string{"note": "hai\ndòng"}), http.StatusBadRequest, "invalid", "note")
	wantError(t, e.do("POST", "/api/v1/alarms/al1/ack", e.techA, map[string]string{"note": strings.Repeat("x", 501)}), http.StatusBadRequest, "invalid", "note")
	wantError(t, e.do("POST", "/api/v1/alarms/al1/ack", e.techA, map[string]any{"note": "x", "by": "someone"}), http.StatusBadRequest, "invalid", "by")
	wantError(t, e.do("POST", "/api/v1/alarms/al1/ack", e.opA, map[string]string{"note": "x"}), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/api/v1/alarms/al2/ack", e.techA, map[string]string{"note": "x"}), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/api/v1/alarms/nope/ack", e.techA, map[string]string{"note": "x"}), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/api/v1/alarms/al3/ack", e.techA, map[string]string{"note": "x"}), http.StatusConflict, "conflict")
	if got := e.auditActions(); len(got) != 0 {
		t.Fatalf("refused acknowledgements were audited: %v", got)
	}

	next := openEvents(t, e, e.techA, "alarms")
	nextOf(t, next, "alarms", func(ev consoleEvent) bool { return ev.Reset })
	r := e.do("POST", "/api/v1/alarms/al1/ack", e.techA, map[string]string{"note": " Đã cử người sửa bộ khuếch đại "})
	want(t, r, http.StatusOK)
	var al loa.Alarm
	r.json(t, &al)
	if al.Ack == nil || al.Ack.Note != "Đã cử người sửa bộ khuếch đại" || al.Ack.By == "" || al.Ack.At.IsZero() || !al.Active() {
		t.Errorf("acknowledged alarm %s", r.body)
	}
	// The console's stream carries it as a change of the active alarm.
	ev := nextOf(t, next, "alarms", func(ev consoleEvent) bool { return len(ev.Changed) > 0 })
	var streamed loa.Alarm
	if err := json.Unmarshal(ev.Changed[0], &streamed); err != nil || streamed.ID != "al1" || streamed.Ack == nil || streamed.Ack.Note != al.Ack.Note {
		t.Errorf("the stream sent %s, %v", ev.Changed[0], err)
	}
	var list []loa.Alarm
	lr := e.do("GET", "/api/v1/alarms?active=true&area=a-1", e.techA, nil)
	want(t, lr, http.StatusOK)
	lr.json(t, &list)
	if len(list) != 1 || list[0].Ack == nil || list[0].Ack.Note != al.Ack.Note {
		t.Errorf("the list does not show the acknowledgement: %s", lr.body)
	}
	if !slices.Contains(e.auditActions(), "alarm.ack al1") {
		t.Errorf("audit %v lacks alarm.ack al1", e.auditActions())
	}
}

// The health history takes a step; anything but 1h, 6h or 1d is refused.
func TestDeviceHealthStep(t *testing.T) {
	e := newEnv(t)
	for _, step := range []string{"1h", "6h", "1d"} {
		want(t, e.do("GET", "/api/v1/devices/dev-a1/health?from=2026-11-01&step="+step, e.techA, nil), http.StatusOK)
	}
	wantError(t, e.do("GET", "/api/v1/devices/dev-a1/health?step=2h", e.techA, nil), http.StatusBadRequest, "invalid", "step")
}
