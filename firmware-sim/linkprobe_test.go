package firmwaresim

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
)

// freezer is a TCP proxy to a broker that can freeze: it stops passing
// bytes either way but closes nothing, as a hung host or a cut link does.
type freezer struct {
	ln     net.Listener
	to     string
	mu     sync.Mutex
	frozen chan struct{} // closed once frozen
	conns  []net.Conn
}

func startFreezer(t *testing.T, to string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, to: to, frozen: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go f.pipe(up, c)
			go f.pipe(c, up)
		}
	}()
	return f
}

// pipe copies until frozen; then it holds the bytes it read, unsent.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			<-make(chan struct{}) // never again: the connection stays open, silent
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

func (f *freezer) freeze()     { close(f.frozen) }
func (f *freezer) url() string { return "tcp://" + f.ln.Addr().String() }

// A receiver whose stream stalls mid-session checks its broker link: on a
// healthy broker the check is answered and nothing changes; on a frozen
// one (no reset, keep-alive far off) it drops the connection and lands on
// the next controller's broker within seconds, not keep-alive + ping
// timeout (here 30 s + 10 s).
func TestStalledStreamChecksTheBrokerLink(t *testing.T) {
	a, b := startClusterBroker(t, false), startClusterBroker(t, true)
	proxy := startFreezer(t, a.Addr())
	urlB := "tcp://" + b.Addr()
	rec := newRecorderAs(t, "tcp://"+a.Addr(), "ctl-a", "ctl", "ctl-pw")
	r := startReceiver(t, Config{ID: "rx1", Password: "pw1", Broker: proxy.url(), Brokers: []string{proxy.url(), urlB}, KeepAlive: 30 * time.Second})
	if r.Broker() != proxy.url() {
		t.Fatalf("receiver on %s, want %s", r.Broker(), proxy.url())
	}

	// A stream that stops (its controller is fine): the check is answered.
	st := newStreamer(t, "s1", 20)
	playSession(t, rec, st, "rx1", 1)
	st.stream(context.Background(), seq(20))
	waitDone(t, r, "s1")
	if probes, drops := r.LinkProbes(); probes == 0 || drops != 0 || r.Broker() != proxy.url() {
		t.Fatalf("after a stall on a healthy broker: %d probes, %d dropped, on %s; want a probe answered", probes, drops, r.Broker())
	}

	// Leadership moves while the old controller freezes mid-stream.
	st2 := newStreamer(t, "s2", 20)
	playSession(t, rec, st2, "rx1", 2)
	conn := r.Conn()
	st2.stream(context.Background(), seq(10))
	proxy.freeze()
	b.SetAccepting(true)
	a.SetAccepting(false)
	frozen := time.Now()
	loatest.Eventually(t, 15*time.Second, func() bool { return r.Broker() == urlB && r.Conn() > conn },
		"the receiver moves to the next broker")
	if _, drops := r.LinkProbes(); drops == 0 {
		t.Error("moved, but not by a link probe")
	}
	t.Logf("on the next broker %v after the freeze", time.Since(frozen).Round(time.Millisecond))
}
