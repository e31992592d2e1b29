package api_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// activeOf lists the fake's active alarms for the notifier.
type activeOf struct{ f *fakeAlarms }

func (a activeOf) Active() []loa.Alarm {
	list, _ := a.f.Alarms(context.Background(), loa.AlarmFilter{Active: true})
	return list
}

func newTestNotifier(db *store.DB, alarms *fakeAlarms) *station.Notifier {
	return station.NewNotifier(station.NotifierConfig{DB: db, Alarms: activeOf{alarms}, Key: []byte("test")})
}

// Rules follow scope: a commune's province staff make and see rules of
// their commune only, never station-wide ones; operators none; bad
// rules change nothing. Every change is audited.
func TestNotifyRules(t *testing.T) {
	e := newEnv(t)
	for _, u := range [][2]string{{"tech", "xa-a"}, {"boss", "hn"}, {"root", ""}} {
		want(t, e.do("POST", "/api/v1/users", e.admin, map[string]string{"username": u[0], "name": u[0], "role": "technician",
			"area_id": u[1], "password": "a long enough one", "email": u[0] + "@example.vn"}), http.StatusCreated)
	}
	rule := func(area string) map[string]any {
		chain := []map[string]any{{"username": "tech", "channel": "email", "after_minutes": 0},
			{"username": "boss", "channel": "sms", "after_minutes": 15}}
		if area == "" {
			chain = []map[string]any{{"username": "root", "channel": "email", "after_minutes": 0}}
		}
		return map[string]any{"name": "Mất kết nối", "area_id": area, "event": "alarm", "alarm_kinds": []string{"offline"},
			"after_minutes": 10, "chain": chain}
	}
	// The commune's technician may not be told of the whole province.
	wide := rule("hn")
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.admin, wide), http.StatusBadRequest, "invalid", "chain.username")
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.opA, rule("xa-a")), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.provA, rule("")), http.StatusForbidden, "forbidden", "area_id")
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.provA, rule("xa-b")), http.StatusBadRequest, "invalid", "area_id")
	bad := rule("xa-a")
	bad["chain"] = []map[string]any{{"username": "tech", "channel": "zalo", "after_minutes": 0}}
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.provA, bad), http.StatusBadRequest, "invalid", "chain.channel")
	bad = rule("xa-a")
	bad["event"] = "storm"
	wantError(t, e.do("POST", "/api/v1/notify/rules", e.provA, bad), http.StatusBadRequest, "invalid", "event")

	var mine, station loa.NotifyRule
	r := e.do("POST", "/api/v1/notify/rules", e.provA, rule("xa-a"))
	want(t, r, http.StatusCreated)
	r.json(t, &mine)
	r = e.do("POST", "/api/v1/notify/rules", e.admin, rule(""))
	want(t, r, http.StatusCreated)
	r.json(t, &station)
	if !mine.Enabled || len(mine.Chain) != 2 || mine.Chain[1].AfterMinutes != 15 {
		t.Errorf("rule %+v", mine)
	}
	var list []loa.NotifyRule
	e.do("GET", "/api/v1/notify/rules", e.provA, nil).json(t, &list)
	if len(list) != 1 || list[0].ID != mine.ID {
		t.Errorf("a commune's province staff see %+v", list)
	}
	e.do("GET", "/api/v1/notify/rules", e.province, nil).json(t, &list)
	if len(list) != 1 {
		t.Errorf("province staff see station-wide rules: %+v", list)
	}
	e.do("GET", "/api/v1/notify/rules", e.admin, nil).json(t, &list)
	if len(list) != 2 {
		t.Errorf("the admin sees %d rules", len(list))
	}
	wantError(t, e.do("GET", "/api/v1/notify/rules/"+station.ID, e.provA, nil), http.StatusNotFound, "not_found")
	off := rule("xa-a")
	off["enabled"] = false
	r = e.do("PUT", "/api/v1/notify/rules/"+mine.ID, e.provA, off)
	want(t, r, http.StatusOK)
	r.json(t, &mine)
	if mine.Enabled {
		t.Error("the rule is still enabled")
	}
	want(t, e.do("DELETE", "/api/v1/notify/rules/"+mine.ID, e.provA, nil), http.StatusNoContent)
	wantError(t, e.do("DELETE", "/api/v1/notify/rules/"+mine.ID, e.provA, nil), http.StatusNotFound, "not_found")

	var log []loa.NotifyLogEntry
	r = e.do("GET", "/api/v1/notify/log?limit=5", e.provA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &log)
	wantError(t, e.do("GET", "/api/v1/notify/log?limit=0", e.provA, nil), http.StatusBadRequest, "invalid", "limit")
	wantError(t, e.do("POST", "/api/v1/notify/ack", e.techA, map[string]string{"token": "abc.def"}), http.StatusBadRequest, "invalid", "token")

	for _, a := range []string{"notify.rule.create " + mine.ID, "notify.rule.update " + mine.ID, "notify.rule.delete " + mine.ID} {
		if !slices.Contains(e.auditActions(), a) {
			t.Errorf("audit %v lacks %s", e.auditActions(), a)
		}
	}
}

// Contact details: admins set them, a bad one is refused naming its
// field, and a token (no person) has none of its own to set.
func TestUserContact(t *testing.T) {
	e := newEnv(t)
	base := map[string]string{"username": "tech", "name": "Kỹ thuật", "role": "technician", "area_id": "xa-a", "password": "a long enough one"}
	bad := map[string]string{"email": "not an address"}
	for k, v := range base {
		bad[k] = v
	}
	wantError(t, e.do("POST", "/api/v1/users", e.admin, bad), http.StatusBadRequest, "invalid", "email")
	base["phone"] = "+84912345678"
	want(t, e.do("POST", "/api/v1/users", e.admin, base), http.StatusCreated)
	wantError(t, e.do("PUT", "/api/v1/users/tech", e.admin, map[string]string{"phone": "0912"}), http.StatusBadRequest, "invalid", "phone")
	var u loa.User
	r := e.do("PUT", "/api/v1/users/tech", e.admin, map[string]string{"email": "tech@example.vn"})
	want(t, r, http.StatusOK)
	r.json(t, &u)
	if u.Email != "tech@example.vn" || u.Phone != "+84912345678" {
		t.Errorf("user %+v", u)
	}
	wantError(t, e.do("PUT", "/api/v1/me/contact", e.techA, map[string]string{"email": "x@example.vn"}), http.StatusForbidden, "forbidden")
	wantError(t, e.do("PUT", "/api/v1/me/contact", e.techA, map[string]string{"phone": "x"}), http.StatusBadRequest, "invalid", "phone")
}
