package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestConflictsNameNothingOfAnotherScope: a 409 met by a scoped caller
// names no id it could not see (here a province's schedule that targets
// the commune's cluster and another commune's).
func TestConflictsNameNothingOfAnotherScope(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"a-8", "a-9"} {
		r := e.do("POST", "/api/v1/areas", e.provA, map[string]any{"id": id, "parent_id": "xa-a", "name": "Cụm " + id, "kind": "cluster"})
		want(t, r, http.StatusCreated)
	}
	_, r := e.createSchedule(e.province, scheduleBody("toan-tinh-bi-mat", "a-8", "b-1"))
	want(t, r, http.StatusCreated)
	want(t, e.do("POST", "/api/v1/tokens", e.admin, map[string]any{"name": "cụm 9", "role": "operator", "area_id": "a-9"}), http.StatusCreated)

	for _, area := range []string{"a-8", "a-9"} {
		r := e.do("DELETE", "/api/v1/areas/"+area, e.provA, nil)
		wantError(t, r, http.StatusConflict, "conflict")
		if strings.Contains(string(r.body), "toan-tinh-bi-mat") || strings.Contains(string(r.body), "tok-") {
			t.Errorf("DELETE %s: the 409 names another scope's id: %s", area, r.body)
		}
	}
}
