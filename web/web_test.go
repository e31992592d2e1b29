package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/web"
)

func TestHandlerServesThePage(t *testing.T) {
	h := web.Handler()
	for path, ctype := range map[string]string{
		"/":             "text/html; charset=utf-8",
		"/js/main.js":   "text/javascript; charset=utf-8",
		"/i18n/vi.json": "application/json",
		"/style.css":    "text/css; charset=utf-8",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, ctype)
		}
		if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers missing: %v", path, rec.Header())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("x")))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/secret.txt", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /secret.txt: %d, want 404", rec.Code)
	}
}

// TestNoExternalResources keeps the UI working on a controller with no
// internet: nothing may load from another origin.
func TestNoExternalResources(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
	markupSink := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write`)
	err := fs.WalkDir(web.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := web.FS.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads an external resource: %s", path, m)
		}
		if m := markupSink.Find(b); m != nil {
			t.Errorf("%s writes markup with %s; use textContent", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(web.FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<meta charset="utf-8">`, `name="viewport"`, `lang="vi"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// TestConsoleGlossary keeps the two glossaries in step: the same keys,
// no empty text, and every key the console names literally exists.
func TestConsoleGlossary(t *testing.T) {
	read := func(lang string) map[string]string {
		t.Helper()
		b, err := fs.ReadFile(web.FS, "i18n/"+lang+".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s.json: %v", lang, err)
		}
		return m
	}
	vi, en := read("vi"), read("en")
	for k, v := range vi {
		if _, ok := en[k]; !ok {
			t.Errorf("en.json lacks %s", k)
		}
		if v == "" {
			t.Errorf("vi.json: %s is empty", k)
		}
	}
	for k := range en {
		if _, ok := vi[k]; !ok {
			t.Errorf("vi.json lacks %s", k)
		}
	}
	literal := regexp.MustCompile(`\bt\("([a-z_.]+[a-z_])"`)
	err := fs.WalkDir(web.FS, "js", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.FS, path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(b, -1) {
			if _, ok := vi[string(m[1])]; !ok {
				t.Errorf("%s names %s, which the glossary lacks", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if vi["login.title"] != "Đăng nhập" || vi["nav.alerts"] != "Cảnh báo khẩn" {
		t.Errorf("the Vietnamese glossary lost its diacritics: %q, %q", vi["login.title"], vi["nav.alerts"])
	}
}
