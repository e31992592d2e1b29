// Package web is Loa's operator UI: one page, plain HTML, CSS and
// JavaScript embedded in the binary, no build step and no external
// resources. The page asks for an API token, keeps it in sessionStorage
// and talks to the JSON API under /api/v1 with it.
package web

import (
	"embed"
	"net/http"
)

// FS holds the UI's files.
//
//go:embed index.html app.js alerts.js style.css
var FS embed.FS

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the UI's files (index.html at the root) for GET and HEAD.
// It needs no authentication: the files hold no data.
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
