package loatest_test

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// watcher is the controller's side: it records every message under
// loa/v1/dev/.
type watcher struct {
	mu   sync.Mutex
	msgs map[string][]string // topic → payloads
}

func watch(t *testing.T, b *loatest.Broker, password string) (*watcher, mqtt.Client) {
	t.Helper()
	w := &watcher{msgs: map[string][]string{}}
	opts := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("ctl").SetPassword(password).SetUsername("ctl").
		SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(loatest.Wait) || tok.Error() != nil {
		t.Fatalf("controller connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(protocol.DeviceFilter("#"), 1, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msgs[m.Topic()] = append(w.msgs[m.Topic()], string(m.Payload()))
	})
	if !tok.WaitTimeout(loatest.Wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return w, c
}

func (w *watcher) statuses(id string) []protocol.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []protocol.Status
	for _, p := range w.msgs[protocol.DeviceTopic(id, protocol.KindStatus)] {
		s, _ := protocol.DecodeStatus([]byte(p))
		out = append(out, s)
	}
	return out
}

func (w *watcher) count(id, kind string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs[protocol.DeviceTopic(id, kind)])
}

// A device announces (boot, conn), answers commands, and its Will says
// offline with the same pair when its link dies.
func TestDeviceLifecycle(t *testing.T) {
	b := loatest.StartBroker(t, "pw")
	w, ctl := watch(t, b, "pw")
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "rx-1", ClientID: "rx-1-c", Password: "pw", Boot: 7, Conn: 2,
		Answer: func(cmd protocol.Command) []protocol.Ack {
			return []protocol.Ack{{ID: cmd.ID, State: protocol.AckDone}}
		}})
	// QoS 1 is at least once: look for a status by what it says, not by
	// how many arrived.
	has := func(online bool) func() bool {
		return func() bool {
			return slices.ContainsFunc(w.statuses("rx-1"), func(s protocol.Status) bool {
				return s.Online == online && s.Boot == 7 && s.Conn == 2
			})
		}
	}
	loatest.Eventually(t, loatest.Wait, has(true), "online status with boot 7 conn 2")

	cmd, _ := json.Marshal(protocol.Command{ID: "c1", Op: protocol.OpStop, Exp: time.Now().Add(time.Minute).UnixMilli()})
	ctl.Publish(protocol.DeviceTopic("rx-1", protocol.KindCmd), 1, false, cmd).WaitTimeout(loatest.Wait)
	if got := <-d.Commands(); got.ID != "c1" || got.Op != protocol.OpStop {
		t.Errorf("device got %+v", got)
	}
	loatest.Eventually(t, loatest.Wait, func() bool { return w.count("rx-1", protocol.KindAck) == 1 }, "ack")

	d.Publish(protocol.KindTele, protocol.Telemetry{Volume: 40}, false)
	loatest.Eventually(t, loatest.Wait, func() bool { return w.count("rx-1", protocol.KindTele) == 1 }, "telemetry")

	d.Drop()
	loatest.Eventually(t, loatest.Wait, has(false), "the Will: offline with boot 7 conn 2")
}

func TestBrokerPasswordAndRestart(t *testing.T) {
	b := loatest.StartBroker(t, "right")
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("x").SetUsername("x").SetPassword("wrong").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false))
	if tok := c.Connect(); tok.WaitTimeout(loatest.Wait) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("a wrong password got in")
	}
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "rx-1", Password: "right", Boot: 1})
	if _, ok := b.Server().Clients.Get("rx-1"); !ok {
		t.Fatal("the server does not list rx-1")
	}
	addr := b.Addr()
	b.Restart()
	if b.Addr() != addr {
		t.Errorf("restarted on %s, want %s", b.Addr(), addr)
	}
	w, _ := watch(t, b, "right")
	// Retained statuses went with the old broker: a fresh subscriber gets
	// only what the new one has seen.
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "rx-2", Password: "right", Boot: 1})
	loatest.Eventually(t, loatest.Wait, func() bool { return len(w.statuses("rx-2")) == 1 }, "rx-2 online")
	if n := len(w.statuses("rx-1")); n != 0 {
		t.Errorf("rx-1's retained status survived the restart (%d)", n)
	}
	b.Stop()
	b.Stop()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the stopped broker still accepts connections")
	}
}

// fakeTB records how a helper ended the test.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	ended string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.end("fatal: " + fmt.Sprintf(format, args...))
}
func (f *fakeTB) Skipf(format string, args ...any) { f.end("skip: " + fmt.Sprintf(format, args...)) }
func (f *fakeTB) end(s string) {
	f.mu.Lock()
	f.ended = s
	f.mu.Unlock()
	runtime.Goexit()
}

// run calls fn with f on a goroutine of its own, as the testing package
// runs a test, and returns how it ended ("" if it returned).
func (f *fakeTB) run(fn func(tb testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ended
}

func TestEventually(t *testing.T) {
	n := 0
	loatest.Eventually(t, loatest.Wait, func() bool { n++; return n == 3 }, "third call")
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
	got := (&fakeTB{TB: t}).run(func(tb testing.TB) {
		loatest.Eventually(tb, 20*time.Millisecond, func() bool { return false }, "the impossible")
	})
	if got != "fatal: not within 20ms: the impossible" {
		t.Errorf("a condition that never holds ended with %q", got)
	}
}

func TestToolRule(t *testing.T) {
	if p := loatest.Tool(t, "sh"); p == "" {
		t.Error("Tool found no sh")
	}
	t.Setenv("CI", "")
	if got := (&fakeTB{TB: t}).run(func(tb testing.TB) { loatest.Tool(tb, "no-such-program-loa") }); got != "skip: no-such-program-loa is not installed (make test installs it); skipping" {
		t.Errorf("outside CI: %q, want a skip that says why", got)
	}
	t.Setenv("CI", "true")
	if got := (&fakeTB{TB: t}).run(func(tb testing.TB) { loatest.Tool(tb, "no-such-program-loa") }); got != "fatal: no-such-program-loa is not installed; `make test` installs it" {
		t.Errorf("under CI: %q, want a failure", got)
	}
}

func TestFreePort(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		p := loatest.FreePort(t, network)
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		var err error
		if network == "tcp" {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		}
		if p <= 0 || err != nil {
			t.Errorf("%s port %d: %v", network, p, err)
		}
	}
}

func TestStartMosquitto(t *testing.T) {
	port := loatest.FreePort(t, "tcp")
	url := loatest.StartMosquitto(t, t.TempDir(), port, fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port))
	d := loatest.ConnectDevice(t, url, loatest.DeviceConfig{ID: "rx-1", Boot: 1})
	d.Close()
}
