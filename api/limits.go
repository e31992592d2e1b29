package api

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/loa-broadcast/loa/cap"
)

// Request limits by route. An ordinary route's exchange — reading the
// body, handling, writing the answer — has one deadline, and its body a
// small bound. Reads and writes share the deadline because a read
// deadline that passes while the handler runs cancels its context
// (net/http's background read). Uploads get a long deadline and bound
// their bodies themselves. Streams (event streams, firmware downloads)
// and backups live as long as their client reads: no deadline, but every write must
// make progress within streamStall.
const (
	DefaultRequestTimeout = 2 * time.Minute // an ordinary exchange
	uploadTimeout         = time.Hour       // 200 MiB at 0.5 Mbit/s, a queue wait and the transcode
	waitTimeout           = maxGroupWait + time.Minute
	streamStall           = time.Minute // longest a stream's write may block (a client that stopped reading)
)

// routeLimit is how one route is bounded.
type routeLimit struct {
	body     int64         // request body bytes; 0: the handler bounds it (uploads)
	deadline time.Duration // of the whole exchange; 0: a stream, bounded by streamStall per write
}

// routeLimits lists the routes that are not ordinary.
var routeLimits = map[string]routeLimit{
	"POST /api/v1/media":                 {body: 0, deadline: uploadTimeout},
	"POST /api/v1/firmware":              {body: 0, deadline: uploadTimeout},
	"POST /api/v1/alerts/cap":            {body: cap.MaxSize, deadline: -1},
	"GET /api/v1/alarms/stream":          {body: maxJSONBody},
	"GET /api/v1/events":                 {body: maxJSONBody},
	"GET /api/v1/alerts/{id}/events":     {body: maxJSONBody},
	"GET /fw/{id}":                       {body: maxJSONBody},
	"GET /cache/{sha256}":                {body: maxJSONBody},
	"GET /api/v1/backup":                 {body: maxJSONBody},
	"POST /api/v1/devices/{id}/commands": {body: maxJSONBody, deadline: waitTimeout},
	"POST /api/v1/areas/{id}/commands":   {body: maxJSONBody, deadline: waitTimeout},
	"GET /api/v1/group-commands/{id}":    {body: maxJSONBody, deadline: waitTimeout},
	"POST /api/v1/login":                 {body: maxLoginBody, deadline: -1},
}

// limit applies the route's bounds to h. A negative deadline means the
// ordinary one.
func (s *Server) limit(pattern string, h http.Handler) http.Handler {
	l, ok := routeLimits[pattern]
	if !ok {
		l = routeLimit{body: maxJSONBody, deadline: -1}
	}
	if l.deadline < 0 {
		l.deadline = s.requestTimeout()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if l.deadline > 0 {
			end := time.Now().Add(l.deadline)
			_ = rc.SetReadDeadline(end) // unsupported writers (tests' recorders) have no deadline anyway
			_ = rc.SetWriteDeadline(end)
		} else {
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Now().Add(streamStall))
		}
		if l.body > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, l.body)
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) requestTimeout() time.Duration {
	if s.RequestTimeout <= 0 {
		return DefaultRequestTimeout
	}
	return s.RequestTimeout
}

// progressReader pushes the write deadline on before each chunk a stream
// copies out: a slow reader that keeps reading is served; one that stops
// is cut after streamStall. The copy also ends when ctx does (the
// server shutting down), so a download never holds a shutdown.
type progressReader struct {
	io.ReadSeeker
	rc  *http.ResponseController
	ctx context.Context
}

func (p progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	_ = p.rc.SetWriteDeadline(time.Now().Add(streamStall))
	return p.ReadSeeker.Read(b)
}
