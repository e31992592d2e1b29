package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/loa-broadcast/loa"
)

// pageIDs reads one page of GET /api/v1/devices?query: its ids, total and
// next cursor.
func (e *env) pageIDs(secret, query string) (ids []string, total, next string) {
	e.t.Helper()
	r := e.do("GET", "/api/v1/devices?"+query, secret, nil)
	want(e.t, r, http.StatusOK)
	var list []struct {
		ID string `json:"id"`
	}
	r.json(e.t, &list)
	ids = []string{}
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	return ids, r.header.Get("X-Total-Count"), r.header.Get("X-Next-Cursor")
}

// Paging walks every matching device once, in id order, with the total
// on each page; search ignores case and Vietnamese marks; a scoped caller
// pages only its own; callers that page nothing get the plain list.
func TestDevicesPageAndSearch(t *testing.T) {
	e := newEnv(t)
	for _, d := range []*loa.Device{
		{ID: "dev-a2", AreaID: "a-1", Name: "Loa Đình Làng"},
		{ID: "dev-a3", AreaID: "a-1", Name: "Loa trường học"},
		{ID: "dev-a4", AreaID: "a-1", Name: "Loa CHỢ mới"},
		{ID: "dev-b2", AreaID: "b-1", Name: "Loa đình"},
	} {
		if _, err := e.db.CreateDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	cursor := ""
	for range 10 {
		ids, total, next := e.pageIDs(e.admin, "limit=2&cursor="+cursor)
		if total != "6" {
			t.Errorf("X-Total-Count %q, want 6", total)
		}
		all = append(all, ids...)
		if next == "" {
			break
		}
		if next != ids[len(ids)-1] {
			t.Errorf("next cursor %q is not the page's last id %v", next, ids)
		}
		cursor = url.QueryEscape(next)
	}
	if want := []string{"dev-a1", "dev-a2", "dev-a3", "dev-a4", "dev-b1", "dev-b2"}; !slices.Equal(all, want) {
		t.Errorf("pages %v, want %v", all, want)
	}

	for q, want := range map[string][]string{
		"dinh":      {"dev-a2", "dev-b1", "dev-b2"}, // "Loa đình" too
		"ĐÌNH":      {"dev-a2", "dev-b1", "dev-b2"},
		"loa cho":   {"dev-a1", "dev-a4"}, // "Loa chợ", "Loa CHỢ mới"
		"dev-a3":    {"dev-a3"},
		"truong":    {"dev-a3"},
		"khong co":  {},
		"Đình Làng": {"dev-a2"},
	} {
		ids, total, next := e.pageIDs(e.admin, "q="+url.QueryEscape(q))
		if !slices.Equal(ids, want) || total != itoa(len(want)) || next != "" {
			t.Errorf("q=%s: %v total %s next %q, want %v", q, ids, total, next, want)
		}
	}
	// Filters and search together, within the caller's scope.
	if ids, total, _ := e.pageIDs(e.opA, "q=dinh&limit=1"); !slices.Equal(ids, []string{"dev-a2"}) || total != "1" {
		t.Errorf("operator A searching dinh: %v total %s", ids, total)
	}
	if ids, total, _ := e.pageIDs(e.admin, "state=online&q=loa"); !slices.Equal(ids, []string{"dev-a1"}) || total != "1" {
		t.Errorf("online and loa: %v total %s", ids, total)
	}
	// Unpaged: every device, no next cursor.
	if ids, _, next := e.pageIDs(e.admin, ""); len(ids) != 6 || next != "" {
		t.Errorf("unpaged: %v next %q", ids, next)
	}

	for _, c := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"cursor=" + url.QueryEscape("a b"), "cursor"},
		{"q=" + url.QueryEscape(string(make([]byte, 101))), "q"},
	} {
		r := e.do("GET", "/api/v1/devices?"+c.query, e.admin, nil)
		wantError(t, r, http.StatusBadRequest, "invalid", c.field)
	}
}

func itoa(n int) string {
	return string(rune('0' + n)) // the counts here are single digits
}
