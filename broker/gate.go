package broker

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// gate bounds the broker's connections before mochi sees them: at most
// maxConns open, of which at most maxPending not yet authenticated, each
// of those given timeout to send its CONNECT. mochi itself waits for a
// CONNECT forever and, on an accept error such as EMFILE, stops listening
// for good; idle sockets once took the broker (and the API) down so.
//
// When the pending table or the whole cap is full, the oldest pending
// connection is closed to make room: a genuine device answers within one
// round trip and a stalled socket is the oldest, so a flood of idle
// sockets delays devices without locking them out. Authenticated
// connections are never dropped to make room; at the cap with none
// pending, a new connection is refused. Nothing here counts per address:
// a whole commune reaches the broker from one carrier-NAT IP.
type gate struct {
	maxConns, maxPending int
	timeout              time.Duration
	log                  *slog.Logger

	mu      sync.Mutex
	open    int
	pending list.List // of *gateConn, oldest first

	dropped atomic.Uint64 // pending connections closed to make room, or refused at the cap
}

func newGate(maxConns, maxPending int, timeout time.Duration, log *slog.Logger) *gate {
	return &gate{maxConns: maxConns, maxPending: maxPending, timeout: timeout, log: log}
}

// listener wraps ln so that every connection it accepts passes the gate.
func (g *gate) listener(ln net.Listener) net.Listener { return &gateListener{Listener: ln, g: g} }

// counts returns the open and the pending connections.
func (g *gate) counts() (open, pending int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.pending.Len()
}

// admit registers c as pending, making room if need be; nil when there is
// none to make.
func (g *gate) admit(c net.Conn) *gateConn {
	for {
		g.mu.Lock()
		if g.open < g.maxConns && g.pending.Len() < g.maxPending {
			gc := &gateConn{Conn: c, g: g}
			gc.elem = g.pending.PushBack(gc)
			g.open++
			g.mu.Unlock()
			// The whole CONNECT (and a TLS handshake under it) must come
			// within the timeout; mochi sets the keep-alive deadline once
			// it has read the CONNECT.
			_ = c.SetDeadline(time.Now().Add(g.timeout))
			return gc
		}
		front := g.pending.Front()
		if front == nil {
			g.mu.Unlock()
			g.dropped.Add(1)
			return nil
		}
		oldest := front.Value.(*gateConn)
		g.pending.Remove(front)
		oldest.elem = nil
		g.mu.Unlock()
		g.dropped.Add(1)
		oldest.Close()
	}
}

// authenticated takes the connection under c (as mochi holds it, perhaps
// inside TLS) off the pending table: it is a client now.
func (g *gate) authenticated(c net.Conn) {
	gc := unwrapGateConn(c)
	if gc == nil {
		return
	}
	g.mu.Lock()
	if gc.elem != nil {
		g.pending.Remove(gc.elem)
		gc.elem = nil
	}
	g.mu.Unlock()
}

func unwrapGateConn(c net.Conn) *gateConn {
	for c != nil {
		if gc, ok := c.(*gateConn); ok {
			return gc
		}
		u, ok := c.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// gateConn is a connection counted by the gate until it is closed.
type gateConn struct {
	net.Conn
	g    *gate
	elem *list.Element // in g.pending while not authenticated; guarded by g.mu
	once sync.Once
}

func (c *gateConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.g.mu.Lock()
		if c.elem != nil {
			c.g.pending.Remove(c.elem)
			c.elem = nil
		}
		c.g.open--
		c.g.mu.Unlock()
	})
	return err
}

// gateListener is the listener mochi serves.
type gateListener struct {
	net.Listener
	g *gate
}

// Accept returns the next connection the gate admits. It rides out accept
// errors other than a closed listener (out of file descriptors, say), as
// net/http does, instead of handing them to mochi, which would stop
// listening.
func (l *gateListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			if pause == 0 {
				pause = 5 * time.Millisecond
				l.g.log.Warn("mqtt accept failed; retrying", "err", err)
			} else {
				pause = min(2*pause, time.Second)
			}
			time.Sleep(pause)
			continue
		}
		pause = 0
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
		c.Close()
	}
}
