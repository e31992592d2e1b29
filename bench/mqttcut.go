package bench

import (
	"io"
	"net"
	"sync"
)

// mqttLink stands between the receivers and the controller's broker: a
// TCP relay on loopback the bench can cut, as a mobile operator's data
// outage cuts the receivers' MQTT while the controller keeps running and
// its broker sees the links drop (the receivers' Wills). While cut it
// closes every connection and refuses new ones; once restored the
// receivers' own reconnects bring them back. The upstream address is
// dialled per connection, so it survives a controller restart.
type mqttLink struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newMQTTLink(upstream string) (*mqttLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &mqttLink{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	go l.serve()
	return l, nil
}

// URL is the broker URL the receivers are given.
func (l *mqttLink) URL() string { return "tcp://" + l.ln.Addr().String() }

func (l *mqttLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.relay(c)
	}
}

func (l *mqttLink) relay(c net.Conn) {
	if !l.track(c) {
		return
	}
	u, err := net.Dial("tcp", l.upstream)
	if err != nil || !l.track(u) {
		if u != nil {
			u.Close()
		}
		l.drop(c)
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done // either side ended: end both
	l.drop(c)
	l.drop(u)
	<-done
}

// track keeps c to be closed by a cut; false (c closed) while cut.
func (l *mqttLink) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		c.Close()
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *mqttLink) drop(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

// SetCut cuts the link (closing every connection) or restores it.
func (l *mqttLink) SetCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
			delete(l.conns, c)
		}
	}
}

// Close stops the relay and closes every connection.
func (l *mqttLink) Close() {
	l.ln.Close()
	l.SetCut(true)
}
