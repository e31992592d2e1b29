package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestCreateToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/tokens", e.admin, map[string]any{"name": "Cán bộ đài xã An Khánh", "role": "operator", "area_id": "xa-a"})
	want(t, r, http.StatusCreated)
	var created struct {
		Token  map[string]any `json:"token"`
		Secret string         `json:"secret"`
	}
	r.json(t, &created)
	id, _ := created.Token["id"].(string)
	if created.Secret == "" || id == "" || created.Token["role"] != "operator" || created.Token["area_id"] != "xa-a" {
		t.Fatalf("created %s", r.body)
	}
	if _, ok := created.Token["hash"]; ok {
		t.Errorf("token JSON carries its hash: %s", r.body)
	}

	// The new secret works, with its role and scope.
	r = e.do("GET", "/api/v1/me", created.Secret, nil)
	want(t, r, http.StatusOK)
	var me map[string]any
	r.json(t, &me)
	if me["user"] != id || me["name"] != "Cán bộ đài xã An Khánh" || me["role"] != "operator" || me["area"] != "xa-a" || me["csrf"] != nil {
		t.Errorf("me %s", r.body)
	}
	if got := e.deviceIDs(created.Secret); !slices.Equal(got, []string{"dev-a1"}) {
		t.Errorf("new operator token sees %v", got)
	}

	// The secret is shown once: nothing else ever returns it.
	for _, p := range []string{"/api/v1/me", "/api/v1/audit"} {
		if r := e.do("GET", p, e.admin, nil); strings.Contains(string(r.body), created.Secret) {
			t.Errorf("%s shows the secret", p)
		}
	}
	if r := e.do("GET", "/api/v1/me", created.Secret, nil); strings.Contains(string(r.body), created.Secret) {
		t.Error("me shows the secret")
	}
	if !slices.Contains(e.auditActions(), "token.create "+id) {
		t.Errorf("audit %v", e.auditActions())
	}
}

func TestBadTokenRequests(t *testing.T) {
	e := newEnv(t)
	before := len(e.auditActions())
	cases := []struct {
		name  string
		body  any
		words []string
	}{
		{"no name", map[string]any{"role": "operator"}, []string{"name"}},
		{"bad role", map[string]any{"name": "x", "role": "root"}, []string{"role", "root"}},
		{"bad area", map[string]any{"name": "x", "role": "operator", "area_id": "Xã A"}, []string{"area_id"}},
		{"missing area", map[string]any{"name": "x", "role": "operator", "area_id": "xa-z"}, []string{"area_id", "xa-z"}},
		{"secret chosen by client", map[string]any{"name": "x", "role": "operator", "secret": "loa_mine"}, []string{"secret"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/tokens", e.admin, c.body), http.StatusBadRequest, "invalid", c.words...)
		})
	}
	if got := e.auditActions(); len(got) != before {
		t.Errorf("bad token requests changed the audit log: %v", got)
	}
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	s, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}})
	want(t, r, http.StatusCreated)
	want(t, e.do("POST", "/api/v1/sessions/"+s.ID+"/stop", e.opA, nil), http.StatusOK)

	r = e.do("GET", "/api/v1/audit?limit=2", e.admin, nil)
	want(t, r, http.StatusOK)
	var recs []struct {
		Actor, Action, Object string
		At                    string
	}
	r.json(t, &recs)
	if len(recs) != 2 {
		t.Fatalf("limit=2 gave %d records: %s", len(recs), r.body)
	}
	if recs[0].Action != "session.stop" || recs[0].Object != s.ID || recs[0].Actor != e.tokens[e.opA].ID || recs[0].At == "" {
		t.Errorf("newest record %+v", recs[0])
	}
	if recs[1].Action != "session.start" {
		t.Errorf("second record %+v", recs[1])
	}
	for _, q := range []string{"0", "-1", "x", "100000"} {
		wantError(t, e.do("GET", "/api/v1/audit?limit="+q, e.admin, nil), http.StatusBadRequest, "invalid", "limit")
	}
}

func TestScopedAdminCannotIssueWiderTokens(t *testing.T) {
	e := newEnv(t)
	tok := &loa.Token{Name: "commune admin", Role: loa.RoleAdmin, AreaID: "xa-a"}
	secret, err := e.db.CreateToken(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	for _, area := range []string{"", "hn", "xa-b", "b-1"} {
		r := e.do("POST", "/api/v1/tokens", secret, map[string]any{"name": "x", "role": "operator", "area_id": area})
		wantError(t, r, http.StatusForbidden, "forbidden", "area_id")
	}
	want(t, e.do("POST", "/api/v1/tokens", secret, map[string]any{"name": "cụm 1", "role": "operator", "area_id": "a-1"}), http.StatusCreated)
}
