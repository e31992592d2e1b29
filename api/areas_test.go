package api_test

import (
	"net/http"
	"slices"
	"testing"
)

func areaIDs(t *testing.T, e *env, secret string) []string {
	t.Helper()
	r := e.do("GET", "/api/v1/areas", secret, nil)
	want(t, r, http.StatusOK)
	var list []struct {
		ID string `json:"id"`
	}
	r.json(t, &list)
	ids := []string{}
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestAreasAreScoped(t *testing.T) {
	e := newEnv(t)
	if got := areaIDs(t, e, e.admin); !slices.Equal(got, []string{"a-1", "b-1", "hn", "xa-a", "xa-b"}) {
		t.Errorf("admin sees %v", got)
	}
	// The scope's subtree only: not the province above it, not the neighbour.
	if got := areaIDs(t, e, e.opA); !slices.Equal(got, []string{"a-1", "xa-a"}) {
		t.Errorf("operator A sees %v, want a-1 and xa-a", got)
	}
	want(t, e.do("GET", "/api/v1/areas/a-1", e.opA, nil), http.StatusOK)
	wantError(t, e.do("GET", "/api/v1/areas/hn", e.opA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/api/v1/areas/b-1", e.opA, nil), http.StatusNotFound, "not_found")

	r := e.do("GET", "/api/v1/areas/xa-a", e.opA, nil)
	var a map[string]any
	r.json(t, &a)
	if a["name"] != "Xã An Khánh" || a["parent_id"] != "hn" || a["kind"] != "commune" {
		t.Errorf("area %s", r.body)
	}
}

func TestCreateAreaWithinScope(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/areas", e.provA, map[string]any{"id": "b-2", "parent_id": "xa-b", "name": "Cụm 2", "kind": "cluster"})
	wantError(t, r, http.StatusForbidden, "forbidden", "parent_id", "xa-b")
	r = e.do("POST", "/api/v1/areas", e.provA, map[string]any{"id": "hp", "name": "Hải Phòng", "kind": "province"})
	wantError(t, r, http.StatusForbidden, "forbidden", "parent_id")

	r = e.do("POST", "/api/v1/areas", e.provA, map[string]any{"id": "a-2", "parent_id": "xa-a", "name": "Cụm 2 — Thôn Đông", "kind": "cluster", "code": "00001"})
	want(t, r, http.StatusCreated)
	var a map[string]any
	r.json(t, &a)
	if a["id"] != "a-2" || a["name"] != "Cụm 2 — Thôn Đông" || a["created_at"] == "0001-01-01T00:00:00Z" {
		t.Errorf("created %s", r.body)
	}
	if got := areaIDs(t, e, e.admin); !slices.Equal(got, []string{"a-1", "a-2", "b-1", "hn", "xa-a", "xa-b"}) {
		t.Errorf("areas after create: %v", got)
	}
	if !slices.Contains(e.auditActions(), "area.create a-2") {
		t.Errorf("audit %v", e.auditActions())
	}
	wantError(t, e.do("POST", "/api/v1/areas", e.admin, map[string]any{"id": "a-2", "parent_id": "xa-a", "name": "x", "kind": "cluster"}),
		http.StatusConflict, "conflict")
}

func TestBadAreaBodiesAre400(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		body  any
		words []string
	}{
		{"no id", map[string]any{"name": "x", "kind": "province"}, []string{"id"}},
		{"no name", map[string]any{"id": "x", "kind": "province"}, []string{"name"}},
		{"bad kind", map[string]any{"id": "x", "name": "x", "kind": "village"}, []string{"kind"}},
		{"orphan commune", map[string]any{"id": "x", "name": "x", "kind": "commune"}, []string{"parent_id"}},
		{"wrong child kind", map[string]any{"id": "x", "parent_id": "hn", "name": "x", "kind": "cluster"}, []string{"parent_id"}},
		{"unknown field", map[string]any{"id": "x", "name": "x", "kind": "province", "population": 3}, []string{"population"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/areas", e.admin, c.body), http.StatusBadRequest, "invalid", c.words...)
		})
	}
	if got := areaIDs(t, e, e.admin); len(got) != 5 {
		t.Errorf("bad bodies stored areas: %v", got)
	}
}
