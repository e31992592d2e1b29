package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa/api"
)

// DefaultHTTPMaxConns bounds open HTTP connections: operators' consoles
// and event streams, API clients, and a province's receivers downloading
// firmware in a rollout wave.
const DefaultHTTPMaxConns = 4096

// maxHeaderBytes bounds a request's headers (431 past it): a bearer token
// and a browser's usual headers take a few KiB.
const maxHeaderBytes = 64 << 10

// serveHTTP listens on the HTTP address and serves h with the server's
// limits: headers must come within HTTPHeaderTimeout (a connection that
// sends nothing is closed then), an idle keep-alive connection is closed
// after HTTPIdleTimeout, ordinary requests have api.DefaultRequestTimeout
// to be read and answered (routes lift it where they need: uploads,
// streams; see api/limits.go), and at most httpConnCap connections are
// open: more are closed as soon as they are accepted, so a flood of idle
// sockets costs no file descriptors the broker and the store need.
func (m *Main) serveHTTP(ctx context.Context, h http.Handler, reg prometheus.Registerer) error {
	cfg := m.Config
	if cfg.HTTPHeaderTimeout <= 0 {
		cfg.HTTPHeaderTimeout = DefaultConfig().HTTPHeaderTimeout
	}
	if cfg.HTTPIdleTimeout <= 0 {
		cfg.HTTPIdleTimeout = DefaultConfig().HTTPIdleTimeout
	}
	limit := httpConnCap(cfg.HTTPMaxConns, m.Logger)
	conns := newConnCap(limit)
	reg.MustRegister(conns.open, conns.refused)
	// Every request's context derives from base, cancelled when Close
	// begins: event streams, long polls and downloads end at once instead
	// of holding the shutdown to its deadline.
	base, cancelBase := context.WithCancel(context.Background())
	m.httpCancel = cancelBase
	m.httpServer = &http.Server{
		Handler:           h,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: cfg.HTTPHeaderTimeout,
		ReadTimeout:       api.DefaultRequestTimeout,
		WriteTimeout:      api.DefaultRequestTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(m.Logger.With("component", "http").Handler(), slog.LevelDebug),
	}
	// HTTPS first: it sets the server's TLSConfig, which must be in place
	// before the first Serve. Both listeners share the one cap.
	if err := m.serveHTTPS(ctx, conns); err != nil {
		return err
	}
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		m.httpLn = conns.listener(ln)
		m.httpDone = make(chan error, 1)
		go func() { m.httpDone <- m.httpServer.Serve(m.httpLn) }()
	}
	m.Logger.Debug("http limits", "max_conns", limit, "header_timeout", cfg.HTTPHeaderTimeout, "idle_timeout", cfg.HTTPIdleTimeout)
	return nil
}

// httpConnCap is the configured cap (0: the default), lowered to a
// quarter of the file descriptor limit: the rest is for the broker's
// connections, the store, media files and UDP sockets.
func httpConnCap(configured int, logger *slog.Logger) int {
	if configured <= 0 {
		configured = DefaultHTTPMaxConns
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<31 { // else unlimited, for our purpose
		if fair := max(16, int(rl.Cur/4)); fair < configured {
			logger.Warn("HTTP connection cap lowered to a quarter of the open file limit; raise the limit (ulimit -n, LimitNOFILE) for more",
				"configured", configured, "cap", fair, "nofile", rl.Cur)
			return fair
		}
	}
	return configured
}

// connCap bounds the connections of every HTTP listener together; each
// listener accepts and at once resets connections beyond it, so the
// kernel's backlog does not fill and the refused client learns at once.
type connCap struct {
	slots   chan struct{}
	open    prometheus.Gauge
	refused prometheus.Counter
}

func newConnCap(limit int) *connCap {
	return &connCap{
		slots: make(chan struct{}, limit),
		open:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "loa_http_connections", Help: "Open HTTP connections."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_http_connections_refused_total",
			Help: "HTTP connections closed on accept because the connection cap was reached (-http-max-conns)."}),
	}
}

// listener returns ln under the cap.
func (c *connCap) listener(ln net.Listener) net.Listener { return &capListener{Listener: ln, l: c} }

type capListener struct {
	net.Listener
	l *connCap
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.l.slots <- struct{}{}:
			l.l.open.Inc()
			return &cappedConn{Conn: c, l: l.l}, nil
		default:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset: no TIME_WAIT, no lingering send
			}
			c.Close()
			l.l.refused.Inc()
		}
	}
}

// cappedConn gives its slot back once, when closed.
type cappedConn struct {
	net.Conn
	l    *connCap
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		<-c.l.slots
		c.l.open.Dec()
	})
	return err
}
