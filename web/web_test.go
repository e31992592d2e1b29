package web_test

import (
	"compress/gzip"
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
		if strings.HasPrefix(path, "vendor/") {
			return nil // pinned libraries as published (leafletVersion); the CSP holds them to the page's own origin
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

// leafletVersion is the vendored map library (web/vendor/leaflet).
const leafletVersion = "1.9.4"

// TestLeafletIsPinned: the served Leaflet is the version its VERSION note
// names, with its licence beside it.
func TestLeafletIsPinned(t *testing.T) {
	js, err := fs.ReadFile(web.FS, "vendor/leaflet/leaflet.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js[:200]), "Leaflet "+leafletVersion+",") {
		t.Errorf("vendor/leaflet/leaflet.js is not Leaflet %s: %.120s", leafletVersion, js)
	}
	for _, f := range []string{"vendor/leaflet/leaflet.css", "vendor/leaflet/LICENSE", "vendor/leaflet/VERSION"} {
		if _, err := fs.Stat(web.FS, f); err != nil {
			t.Error(err)
		}
	}
	note, _ := fs.ReadFile(web.FS, "vendor/leaflet/VERSION")
	if !strings.HasPrefix(string(note), "Leaflet "+leafletVersion+" ") {
		t.Errorf("vendor/leaflet/VERSION names another version: %.40s", note)
	}
	if _, err := fs.Stat(web.FS, "vendor/axe-core/axe.min.js"); err == nil {
		t.Error("axe-core (a test tool) is embedded in the console")
	}
}

// TestHandlerGzipAndETag: a browser gets the files gzipped, and a second
// load with the ETag costs a 304; a client without gzip gets them plain.
func TestHandlerGzipAndETag(t *testing.T) {
	h := web.Handler()
	get := func(path string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	plain := get("/vendor/leaflet/leaflet.js", nil)
	if plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" || !strings.Contains(plain.Body.String(), "Leaflet") {
		t.Fatalf("plain GET: %d %v", plain.Code, plain.Header())
	}
	gz := get("/vendor/leaflet/leaflet.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if gz.Code != http.StatusOK || gz.Header().Get("Content-Encoding") != "gzip" || gz.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("gzip GET: %d %v", gz.Code, gz.Header())
	}
	if gz.Body.Len() >= plain.Body.Len()/2 {
		t.Errorf("gzipped %d bytes of %d", gz.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(zr); err != nil || string(b) != plain.Body.String() {
		t.Errorf("the gzipped file is not the file: %v", err)
	}
	if !strings.Contains(gz.Header().Get("Vary"), "Accept-Encoding") || gz.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Errorf("Vary %q, ETags %q and %q", gz.Header().Get("Vary"), gz.Header().Get("ETag"), plain.Header().Get("ETag"))
	}
	again := get("/vendor/leaflet/leaflet.js", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gz.Header().Get("ETag")})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("GET with the ETag: %d, %d bytes", again.Code, again.Body.Len())
	}
	if refused := get("/style.css", map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got %v", refused.Header())
	}
	if dir := get("/js/", nil); dir.Code != http.StatusNotFound {
		t.Errorf("GET /js/: %d, want 404 (no listings)", dir.Code)
	}
	if root := get("/", nil); root.Code != http.StatusOK || !strings.Contains(root.Body.String(), "<title>") {
		t.Errorf("GET /: %d", root.Code)
	}
}

// TestMapTilesCSP: images may come from the tile host only when a tile
// URL is configured.
func TestMapTilesCSP(t *testing.T) {
	csp := func(o web.Options) string {
		rec := httptest.NewRecorder()
		o.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Header().Get("Content-Security-Policy")
	}
	if got := csp(web.Options{}); !strings.Contains(got, "img-src 'self' data:;") {
		t.Errorf("no tiles: %q", got)
	}
	if got := csp(web.Options{MapTiles: "https://tile.openstreetmap.org/{z}/{x}/{y}.png"}); !strings.Contains(got, "img-src 'self' data: https://tile.openstreetmap.org;") ||
		!strings.Contains(got, "connect-src 'self';") || !strings.Contains(got, "script-src 'self';") {
		t.Errorf("OSM tiles: %q", got)
	}
	for tmpl, want := range map[string]string{
		"https://tile.openstreetmap.org/{z}/{x}/{y}.png":       "https://tile.openstreetmap.org",
		"https://{s}.tile.example.org/{z}/{x}/{y}{r}.png":      "https://*.tile.example.org",
		"http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png":           "http://10.0.0.5:8080",
		"https://tiles.example.vn/osm/{z}/{x}/{y}.png?key=abc": "https://tiles.example.vn",
	} {
		if got, err := web.TileSource(tmpl); err != nil || got != want {
			t.Errorf("TileSource(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "tile.openstreetmap.org/{z}/{x}/{y}.png", "ftp://x.org/{z}/{x}/{y}.png", "https://x.org/{z}/{x}.png",
		"https://a.{s}.x.org/{z}/{x}/{y}.png", "https://*.x.org/{z}/{x}/{y}.png", "https://u:p@x.org/{z}/{x}/{y}.png",
		"https:///{z}/{x}/{y}.png", "https://x.org; script-src *;/{z}/{x}/{y}", "https://x.org;script-src/{z}/{x}/{y}",
	} {
		if got, err := web.TileSource(bad); err == nil {
			t.Errorf("TileSource(%q) = %q, want an error", bad, got)
		}
		if got := csp(web.Options{MapTiles: bad}); !strings.Contains(got, "img-src 'self' data:;") {
			t.Errorf("an invalid tile URL %q widened the CSP: %q", bad, got)
		}
	}
}

// FuzzTileSource: whatever a tile URL holds, the source it gives the CSP
// is one token of scheme and host: nothing that could end the directive
// or add another.
func FuzzTileSource(f *testing.F) {
	for _, s := range []string{"https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://{s}.t.example/{z}/{x}/{y}{r}.png",
		"http://[::1]:8080/{z}/{x}/{y}", "https://x.org;script-src/{z}/{x}/{y}", "https://x.org 'unsafe-inline'/{z}/{x}/{y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		src, err := web.TileSource(tmpl)
		if err != nil {
			return
		}
		if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") || strings.ContainsAny(src, " \t\r\n;,'\"") {
			t.Errorf("TileSource(%q) = %q", tmpl, src)
		}
	})
}
