package api_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestWebUIIsServedWithoutAuth(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", "<title>"},
		{"/ui/", "text/html", "<title>"},
		{"/js/screens/play.js", "text/javascript", "/api/v1/sessions"},
		{"/i18n/vi.json", "application/json", "Đăng nhập"},
		{"/style.css", "text/css", "body"},
	} {
		r := e.do("GET", c.path, "", nil)
		want(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(string(r.body), c.has) {
			t.Errorf("%s: body lacks %q", c.path, c.has)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
	}
	want(t, e.do("POST", "/", "", "x"), http.StatusMethodNotAllowed)
}
