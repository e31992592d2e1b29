package broadcast

import (
	"context"
	"net"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// TestShardedFanout streams a session to SRTP receivers on real sockets
// with its fan-out split across two shards, each on its own goroutine and
// socket: every receiver gets every packet, from the media socket's
// address, authenticated under its own key, and both shards sent. The
// receivers' first reports reach the engine's reader through the port the
// send sockets share (the lead waits for them).
func TestShardedFanout(t *testing.T) {
	const n, frames = 24, 40
	rx, err := openBenchReceivers(n, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.close()
	rx.srtp.Store(true)
	ctx := context.Background()
	// The lead holds packet 0 until every receiver has authenticated; no
	// test waits that long.
	e, err := Open(ctx, Config{Bind: "127.0.0.1:0", Tuner: rx, Caps: rx, Fence: protocol.Fence{Gen: 1},
		Shards: 2, Lead: guard})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if len(e.senders) != 2 {
		t.Fatalf("%d senders, want 2", len(e.senders))
	}
	for i, s := range e.senders {
		if s.close == nil {
			t.Errorf("shard %d sends through the media socket itself, not a socket or descriptor of its own", i)
		}
	}
	e.shardMin = 1 // a small session takes the parallel path too

	s := &loa.Session{ID: "sharded", SSRC: 0x5a4d, Priority: loa.PriorityNormal}
	for i := range n {
		s.Devices = append(s.Devices, rx.id(i))
	}
	if err := e.Start(ctx, s, &sliceSource{pkts: opusPackets(t, frames)}, frames); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to end", func() bool { _, running := e.Status(s.ID); return !running })
	got := rx.settled(ctx)
	for i, k := range got {
		if k != frames {
			t.Errorf("receiver %d: %d of %d packets authenticated", i, k, frames)
		}
	}
	if f := rx.authFailures(); f != 0 {
		t.Errorf("%d datagrams did not authenticate or came from elsewhere", f)
	}
	for i := range e.shardSent {
		// Each shard holds half the receivers: its goroutine sent their
		// packets and Sender Reports.
		if k := e.shardSent[i].Load(); k < n/2*frames {
			t.Errorf("shard %d sent %d datagrams in parallel sends, want ≥ %d", i, k, n/2*frames)
		}
	}
}

// TestShardsBounded refuses a shard count out of range.
func TestShardsBounded(t *testing.T) {
	for _, k := range []int{-1, maxShards + 1} {
		if _, err := Open(context.Background(), Config{Bind: "127.0.0.1:0", Shards: k}); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("shards %d: %v, want EINVALID", k, err)
		}
	}
}

// TestMediaPortTaken: the send sockets share the media port through
// SO_REUSEPORT, yet a port another socket, or another engine, holds is
// refused as before.
func TestMediaPortTaken(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, Config{Bind: "127.0.0.1:0", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e2, err := Open(ctx, Config{Bind: e.LocalAddr().String(), Shards: 2}); err == nil {
		e2.Close()
		t.Errorf("a second engine opened %s", e.LocalAddr())
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if e3, err := Open(ctx, Config{Bind: c.LocalAddr().String(), Shards: 2}); err == nil {
		e3.Close()
		t.Errorf("an engine opened %s, which a socket holds", c.LocalAddr())
	}
}
