package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// badNames are names no record may take: control characters of every
// kind, which would break a line in a log, a CSV export or the console.
var badNames = map[string]string{
	"NUL":     "Loa\x00chợ",
	"newline": "Loa\nchợ",
	"CR":      "Loa\rchợ",
	"tab":     "Loa\tchợ",
	"ESC":     "Loa\x1b[31mchợ",
	"DEL":     "Loa\x7fchợ",
	"C1 NEL":  "Loa\u0085chợ",
	"C1 CSI":  "Loa\u009bchợ",
	"LS":      "Loa\u2028chợ",
}

// TestControlCharactersRefusedInEveryName sends each bad name as the name
// of everything that has one; each is a 400 naming the field, and nothing
// is stored.
func TestControlCharactersRefusedInEveryName(t *testing.T) {
	e := newEnv(t)
	for label, name := range badNames {
		t.Run(label, func(t *testing.T) {
			for _, c := range []struct {
				what, method, path string
				body               any
				field              string
			}{
				{"area", "POST", "/api/v1/areas", map[string]any{"id": "c-9", "parent_id": "xa-a", "name": name, "kind": "cluster"}, "name"},
				{"device", "POST", "/api/v1/devices", map[string]any{"id": "dev-9", "area_id": "a-1", "name": name}, "name"},
				{"playlist", "POST", "/api/v1/playlists", map[string]any{"id": "pl-9", "name": name, "items": []map[string]any{{"media_id": "m-1"}}}, "name"},
				{"schedule", "POST", "/api/v1/schedules", func() any { b := scheduleBody("sc-9", "a-1"); b["name"] = name; return b }(), "name"},
				{"calendar", "PUT", "/api/v1/calendars/" + url.PathEscape(name), map[string]any{"dates": []string{"09-02"}}, "name"},
				{"token", "POST", "/api/v1/tokens", map[string]any{"name": name, "role": "operator", "area_id": "xa-a"}, "name"},
				{"alert title", "POST", "/api/v1/alerts", map[string]any{"title": name, "level": "uu_tien",
					"content": map[string]any{"text": "Thông báo"}, "targets": map[string]any{"areas": []string{"a-1"}}}, "title"},
			} {
				r := e.do(c.method, c.path, e.admin, c.body)
				if r.status != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400; body %s", c.what, r.status, r.body)
					continue
				}
				wantError(t, r, http.StatusBadRequest, "invalid", c.field+":", "control character")
			}
			wantError(t, e.upload(e.admin, map[string]string{"name": name}, "a.wav", "RIFF"), http.StatusBadRequest, "invalid", "name")
			if !strings.ContainsAny(name, "\r\n") { // mime/multipart escapes these in a file name
				wantError(t, e.upload(e.admin, nil, name+".wav", "RIFF"), http.StatusBadRequest, "invalid", "name")
			}
		})
	}
	if n := e.media.count(); n != 0 {
		t.Errorf("%d media stored from bad names", n)
	}
	for _, p := range []string{"/api/v1/areas/c-9", "/api/v1/devices/dev-9", "/api/v1/playlists/pl-9", "/api/v1/schedules/sc-9"} {
		want(t, e.do("GET", p, e.admin, nil), http.StatusNotFound)
	}
	r := e.do("GET", "/api/v1/alerts", e.admin, nil)
	var alerts []any
	r.json(t, &alerts)
	if len(alerts) != 0 {
		t.Errorf("%d alerts sent with bad titles", len(alerts))
	}
}
