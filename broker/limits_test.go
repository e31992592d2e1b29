package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// rawConnect dials the broker and sends an MQTT 3.1.1 CONNECT; with a user
// it waits for the CONNACK and fails the test unless it accepts.
func rawConnect(t *testing.T, b *Broker, clientID, user, pass string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
			ClientIdentifier: clientID, UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// sendHuge writes the fixed header of a packet of type typ announcing n
// bytes, then streams zeros from a small buffer (so the test itself
// allocates nothing like n) until the broker hangs up or n are sent. It
// returns how many payload bytes were written before the broker hung up.
func sendHuge(c net.Conn, typ byte, n int) int {
	var hdr bytes.Buffer
	hdr.WriteByte(typ << 4)
	for x := n; ; { // MQTT's variable-length remaining length
		d := byte(x % 128)
		if x /= 128; x > 0 {
			d |= 0x80
		}
		hdr.WriteByte(d)
		if x == 0 {
			break
		}
	}
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(hdr.Bytes()); err != nil {
		return 0
	}
	chunk := make([]byte, 64<<10)
	sent := 0
	for sent < n {
		w, err := c.Write(chunk[:min(len(chunk), n-sent)])
		sent += w
		if err != nil {
			break
		}
	}
	return sent
}

// closedByPeer waits until the broker has closed c.
func closedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the broker kept the connection open")
	}
}

func rssKiB() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

// Eight 32 MB publishes at once (they took the controller from 24 MB to
// 285 MB RSS and were acked) are refused as their headers arrive: each
// sender is disconnected, and the broker allocates next to nothing for
// them. So is a 32 MB CONNECT from a socket not yet authenticated. A
// payload of the contract's largest size still passes.
func TestOversizedPacketsRefused(t *testing.T) {
	const huge, senders = 32 << 20, 8
	auth := fakeAuth{"d1": "p1"}
	for i := range senders {
		auth[fmt.Sprint("big", i)] = fmt.Sprint("p", i)
	}
	b := startBroker(t, func(c *Config) { c.Auth = auth })
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	in := newInbox()
	subscribe(t, ctl, protocol.DeviceFilter(protocol.KindEvent), in.handle)

	var conns []net.Conn
	for i := range senders {
		id := fmt.Sprint("big", i) // one connection per device
		conns = append(conns, rawConnect(t, b, id, id, auth[id]))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rssBefore := rssKiB()

	var wg sync.WaitGroup
	took := make([]int, senders+1)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[i] = sendHuge(c, packets.Publish, huge)
			closedByPeer(t, c)
		}()
	}
	// And a CONNECT as large, before any authentication.
	anon, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		took[senders] = sendHuge(anon, packets.Connect, huge)
		closedByPeer(t, anon)
	}()
	wg.Wait()

	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d × %d MB publishes and a %d MB CONNECT: the broker took %v bytes of each before hanging up; allocated %d KiB meanwhile; heap in use %d → %d KiB; RSS %s → %s",
		senders, huge>>20, huge>>20, took, allocated>>10, before.HeapInuse>>10, after.HeapInuse>>10, rssBefore, rssKiB())
	if allocated > 16<<20 {
		t.Errorf("allocated %d MiB while refusing the oversized packets, want < 16", allocated>>20)
	}
	loatest.Eventually(t, wait, func() bool { return b.Stats().Oversize == senders }, "oversize counted")

	// The largest payload the contract allows still goes through.
	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	big := strings.Repeat("x", protocol.MaxPayload)
	publish(t, d1, protocol.DeviceTopic("d1", protocol.KindEvent), 1, false, big)
	in.waitFor(t, big)
}

func TestMaxPacketConfigurable(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxPacket = MinMaxPacket })
	c := rawConnect(t, b, "d1", "d1", "p1")
	sendHuge(c, packets.Publish, MinMaxPacket)
	closedByPeer(t, c)
	loatest.Eventually(t, wait, func() bool { return b.Stats().Oversize == 1 }, "oversize counted")
	for _, bad := range []int{1024, MinMaxPacket - 1, 512 << 20} {
		if _, err := New(Config{Addr: ":0", ControllerUser: "c", ControllerPassword: "p", Auth: fakeAuth{}, MaxPacket: bad}); err == nil {
			t.Errorf("MaxPacket %d accepted", bad)
		}
	}
}

// Idle sockets that never send a CONNECT (they once exhausted the
// broker's file descriptors) do not stop a genuine device from
// connecting, nor drop one already connected; there are never more of
// them than MaxPending.
func TestIdleSocketsDoNotLockDevicesOut(t *testing.T) {
	const maxPending, idle = 8, 100
	b := startBroker(t, func(c *Config) {
		c.MaxConnections, c.MaxPending = 40, maxPending
		c.ConnectTimeout = time.Hour // only the cap protects the devices here
	})
	lost := make(chan struct{})
	d2 := mustConnect(t, clientOptions(b, "d2", "d2", "p2").
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))

	var socks []net.Conn
	for range idle {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		socks = append(socks, c)
	}
	// All accepted: the gate has dropped every one beyond MaxPending and
	// holds exactly MaxPending (the two counts move one after the other on
	// each accept, so both are waited for together).
	loatest.Eventually(t, wait, func() bool {
		s := b.Stats()
		return s.Dropped == idle-maxPending && s.Pending == maxPending
	}, "idle sockets dropped, MaxPending held")

	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	alive(t, d1, "d1")
	alive(t, d2, "d2")
	select {
	case <-lost:
		t.Fatal("a connected device was dropped for idle sockets")
	default:
	}
	if s := b.Stats(); s.Clients != 2 || s.Pending > maxPending {
		t.Errorf("Stats = %+v, want 2 clients and at most %d pending", s, maxPending)
	}
	// The oldest idle sockets were the ones closed.
	closedByPeer(t, socks[0])
}

// At the connection cap with every connection authenticated, a new one is
// refused; once one leaves, a device gets in again.
func TestConnectionCap(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxConnections = 2 })
	mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	d2 := mustConnect(t, clientOptions(b, "d2", "d2", "p2"))
	if c, err := connectWith(clientOptions(b, "d3", "d3", "p3").SetConnectTimeout(time.Second)); err == nil {
		c.Disconnect(0)
		t.Fatal("a third connection got past a cap of 2")
	}
	if s := b.Stats(); s.Dropped == 0 || s.Clients != 2 {
		t.Errorf("Stats = %+v, want a drop and 2 clients", s)
	}
	d2.Disconnect(250)
	loatest.Eventually(t, wait, func() bool { open, _ := b.gate.counts(); return open == 1 }, "d2's connection closed")
	alive(t, mustConnect(t, clientOptions(b, "d3", "d3", "p3")), "d3")
}

// A connection that sends no CONNECT within ConnectTimeout is closed.
func TestSilentConnectionTimesOut(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.ConnectTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedByPeer(t, c)
	loatest.Eventually(t, wait, func() bool { return b.Stats().Pending == 0 }, "no pending connection")
}

// flakyListener fails its first Accept as a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	once sync.Once
}

func (l *flakyListener) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() {
		err = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	})
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// mochi stops listening for good on an accept error; the gate rides it out.
func TestAcceptErrorDoesNotStopTheBroker(t *testing.T) {
	b, err := New(Config{Addr: "127.0.0.1:0", ControllerUser: ctlUser, ControllerPassword: ctlPass, Auth: fakeAuth{"d1": "p1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	err = b.serve(&flakyListener{Listener: ln}, nil)
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	alive(t, mustConnect(t, clientOptions(b, "d1", "d1", "p1")), "d1")
}

func TestBackoffDelays(t *testing.T) {
	now := time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)
	bo := newBackoff(func() time.Time { return now })
	var got []time.Duration
	for range 10 {
		got = append(got, bo.failed("d1"))
	}
	want := []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	// Per account: d1's failures slow nobody else...
	if d := bo.failed("d2"); d != 0 {
		t.Errorf("d2's first failure delayed %v", d)
	}
	// ...a success clears it, and so does a quiet spell.
	bo.succeeded("d1")
	if d := bo.failed("d1"); d != 0 {
		t.Errorf("after a success: %v", d)
	}
	for range 5 {
		bo.failed("d2")
	}
	now = now.Add(backoffForget + time.Second)
	if d := bo.failed("d2"); d != 0 {
		t.Errorf("after a quiet spell: %v", d)
	}
	// Any user name can fail: the table stays bounded.
	for i := range backoffAccounts + 10 {
		bo.failed(fmt.Sprint("guess-", i))
	}
	if n := len(bo.accounts); n > backoffAccounts {
		t.Errorf("%d accounts kept, want at most %d", n, backoffAccounts)
	}
}

// Failures of an account never lock it out: the device with its own
// password gets in right after someone failed its account many times.
func TestFailedConnectsDoNotLockOut(t *testing.T) {
	b := startBroker(t)
	for range backoffFree + 1 {
		if c, err := connectWith(clientOptions(b, "d1", "d1", "guess")); err == nil {
			c.Disconnect(0)
			t.Fatal("a wrong password got in")
		}
	}
	alive(t, mustConnect(t, clientOptions(b, "d1", "d1", "p1")), "d1")
	if n := len(b.backoff.accounts); n != 0 {
		t.Errorf("%d accounts in back-off after the success, want 0", n)
	}
}
