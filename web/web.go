// Package web is Loa's console: ES modules, HTML, CSS and the glossaries
// (i18n/vi.json, en.json) embedded in the binary, no build step and no
// external resources. The console signs in through the API and talks
// only to the documented JSON API under /api/v1 and its one event
// stream per tab (GET /api/v1/events).
package web

import (
	"embed"
	"net/http"
)

// FS holds the console's files. vendor/ holds test tools (axe-core) that
// the console does not serve.
//
//go:embed index.html style.css js i18n
var FS embed.FS

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" +
	// The media library's player and the alert desk's spoken preview (an object URL).
	"; media-src 'self' blob:"

// Handler serves the console's files (index.html at the root) for GET and
// HEAD. It needs no authentication: the files hold no data.
func Handler() http.Handler {
	files := http.FileServerFS(FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
