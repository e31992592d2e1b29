// Package web is Loa's console: ES modules, HTML, CSS and the glossaries
// (i18n/vi.json, en.json) embedded in the binary, no build step and no
// external resources. The console signs in through the API and talks
// only to the documented JSON API under /api/v1 and its one event
// stream per tab (GET /api/v1/events). The one exception is the map's
// tiles, from the host of a configured tile URL (Options.MapTiles).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// FS holds the console's files. vendor/leaflet is the map library
// (pinned, served); the rest of vendor/ holds test tools (axe-core) that
// the console does not serve.
//
//go:embed index.html style.css js i18n vendor/leaflet
var FS embed.FS

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own origin; %s is where else images may come from (the
// map's tile host), or nothing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:%s; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" +
	// The media library's player and the alert desk's spoken preview (an object URL).
	"; media-src 'self' blob:"

// Options are what the console's files depend on in the station's
// configuration.
type Options struct {
	// MapTiles is the overview map's tile URL template, e.g.
	// https://tile.openstreetmap.org/{z}/{x}/{y}.png; "" draws no tiles
	// (the communes' outlines instead). The CSP lets images come from
	// its host only when it is set.
	MapTiles string
}

// TileSource is the CSP source of a tile URL template: its scheme and
// host ("https://tile.openstreetmap.org"), with a leading {s}. subdomain
// label as a wildcard ("https://*.tile.example.org"). It refuses a
// template that is not http(s), has no {z}, {x} and {y}, or has a
// placeholder elsewhere in its host.
func TileSource(tmpl string) (string, error) {
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(tmpl, p) {
			return "", fmt.Errorf("%q has no %s: want a template like https://tile.openstreetmap.org/{z}/{x}/{y}.png", tmpl, p)
		}
	}
	scheme, rest, ok := strings.Cut(tmpl, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		return "", fmt.Errorf("%q: want an http:// or https:// URL", tmpl)
	}
	host, _, _ := strings.Cut(rest, "/")
	wild := strings.HasPrefix(host, "{s}.")
	if wild {
		host = "x" + strings.TrimPrefix(host, "{s}")
	}
	u, err := url.Parse(scheme + "://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" || strings.IndexFunc(host, notHostChar) >= 0 {
		return "", fmt.Errorf("%q: the host must be a name or an address, with at most a leading {s}. subdomain", tmpl)
	}
	if wild {
		host = "*" + strings.TrimPrefix(host, "x")
	}
	return scheme + "://" + host, nil
}

// notHostChar: a host in a CSP source is letters, digits, dots, hyphens,
// a port's colon, an IPv6 address's brackets; nothing that could end the
// directive.
func notHostChar(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
}

// Handler serves the console's files with no map tiles.
func Handler() http.Handler { return Options{}.Handler() }

// Handler serves the console's files (index.html at the root) for GET
// and HEAD, gzipped to clients that take it and with an ETag, so a
// province-scale first load stays small and a second one costs a 304.
// It needs no authentication: the files hold no data. An invalid
// MapTiles (see TileSource) allows no tile host.
func (o Options) Handler() http.Handler {
	csp := fmt.Sprintf(contentSecurityPolicy, "")
	if o.MapTiles != "" {
		if src, err := TileSource(o.MapTiles); err == nil {
			csp = fmt.Sprintf(contentSecurityPolicy, " "+src)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		f, ok := files()[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Add("Vary", "Accept-Encoding")
		body, etag := f.raw, f.etag
		if f.gz != nil && AcceptsGzip(r) {
			body, etag = f.gz, f.etag+"-gz"
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", `"`+etag+`"`)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
	})
}

// file is one served file, read and compressed once.
type file struct {
	name    string // for its Content-Type
	raw, gz []byte // gz nil: not worth compressing
	etag    string
}

// files maps each served path ("" is index.html) to its file.
var files = sync.OnceValue(func() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := file{name: path.Base(p), raw: b, etag: hex.EncodeToString(sum[:12])}
		switch path.Ext(p) {
		case ".html", ".js", ".css", ".json", ".svg":
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			if buf.Len() < len(b) {
				f.gz = buf.Bytes()
			}
		}
		out[p] = f
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("web: reading the embedded files: %v", err)) // embedded at build time: cannot fail
	}
	out[""] = out["index.html"]
	return out
})

// AcceptsGzip reports whether the request's Accept-Encoding takes gzip
// (and does not refuse it with q=0).
func AcceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") || strings.TrimSpace(name) == "*" {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
