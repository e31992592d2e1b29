package api

import (
	"compress/gzip"
	"net/http"
	"strings"
	"sync"
)

// gzipJSON compresses a GET's JSON or CSV answer for a client that takes
// gzip: lists at province scale (a week's agenda of 200 schedules, a
// page of receivers) are five to ten times smaller so. It decides at the
// header, by Content-Type: event streams, audio (with its Range answers)
// and anything already encoded pass through untouched.
type gzipJSON struct {
	http.ResponseWriter
	zw      *gzip.Writer
	decided bool
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func (g *gzipJSON) WriteHeader(code int) {
	if !g.decided {
		g.decided = true
		h := g.Header()
		ct := h.Get("Content-Type")
		if code != http.StatusNoContent && code != http.StatusNotModified && h.Get("Content-Encoding") == "" &&
			(strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/csv")) {
			h.Del("Content-Length")
			h.Set("Content-Encoding", "gzip")
			h.Add("Vary", "Accept-Encoding")
			g.zw = gzipWriters.Get().(*gzip.Writer)
			g.zw.Reset(g.ResponseWriter)
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipJSON) Write(b []byte) (int, error) {
	if !g.decided {
		g.WriteHeader(http.StatusOK)
	}
	if g.zw != nil {
		return g.zw.Write(b)
	}
	return g.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// and flushes of the streams, which are never compressed).
func (g *gzipJSON) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *gzipJSON) close() {
	if g.zw != nil {
		_ = g.zw.Close() // the client may be gone; nothing to do
		g.zw.Reset(nil)
		gzipWriters.Put(g.zw)
		g.zw = nil
	}
}
