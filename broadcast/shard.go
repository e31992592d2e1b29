package broadcast

import (
	"fmt"
	"net"
	"runtime"
	"sync"
)

// A session's receivers are split into shards, one sending goroutine per
// core (Config.Shards). A receiver stays in the shard Start (or
// AddListener) put it in, so its SRTP sealing state is only ever touched by
// that shard's goroutine on the hot path (its lock is uncontended). On
// Linux each shard sends through a send-only socket of its own, bound to
// the media port beside the engine's socket (SO_REUSEPORT, every incoming
// datagram steered to the engine's socket by a BPF program): RTCP is still
// read from that one socket by one goroutine, and its authentication state
// stays as it was. Elsewhere each shard sends through a dup of the media
// socket. docs/architecture.md, "Every core", says why and what was
// measured.

// maxShards bounds Config.Shards.
const maxShards = 64

// minShardDests is the smallest fan-out handed to the shards' goroutines:
// below it, waking them costs more than it saves, and the session's own
// goroutine sends every shard's part in turn.
const minShardDests = 512

// sendMode is how shards reach the media port.
type sendMode int

const (
	sendSockets sendMode = iota // send-only sockets on the port (Linux); dups elsewhere
	sendDups                    // dups of the media socket: each its own write lock, one wait queue
	sendOne                     // the media socket itself for every shard: one write lock
)

func (m sendMode) String() string {
	return [...]string{"send-only sockets", "dup'ed descriptors", "one descriptor"}[m]
}

// sender is one shard's way to the media port.
type sender struct {
	conn *net.UDPConn // the media socket, or a dup of it; fanout's fallback sends through it
	bw   batchWriter  // safe for concurrent use (x/net's); or nil and writer set
	// writer, if set, makes a batchWriter for one goroutine.
	writer func() batchWriter
	close  func() error // nil: nothing of its own to close
}

// batchWriter for one goroutine.
func (s sender) batchWriter() batchWriter {
	if s.writer != nil {
		return s.writer()
	}
	return s.bw
}

// openSenders returns k senders for the media socket conn.
func openSenders(conn *net.UDPConn, bw batchWriter, k int, mode sendMode) ([]sender, sendMode, error) {
	if mode == sendSockets {
		out, err := openSendSockets(conn, k)
		if err == nil {
			return out, mode, nil
		}
		mode = sendDups
	}
	out := []sender{{conn: conn, bw: bw}}
	for len(out) < k {
		if mode == sendOne {
			out = append(out, out[0])
			continue
		}
		c, err := dupConn(conn)
		if err != nil {
			closeSenders(out)
			return nil, mode, err
		}
		out = append(out, sender{conn: c, bw: newBatchWriter(c), close: c.Close})
	}
	return out, mode, nil
}

// closeSenders closes what the senders opened (never the media socket).
func closeSenders(out []sender) {
	for _, s := range out {
		if s.close != nil {
			s.close()
		}
	}
}

// dupConn is another descriptor of c's socket, with its own poller entry
// and write lock.
func dupConn(c *net.UDPConn) (*net.UDPConn, error) {
	f, err := c.File() // a dup, left non-blocking
	if err != nil {
		return nil, fmt.Errorf("broadcast: dup media socket: %w", err)
	}
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("broadcast: dup media socket: %w", err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("broadcast: dup media socket: %T is not UDP", pc)
	}
	return uc, nil
}

// shardCount is the shards asked for: all cores when 0.
func shardCount(asked int) int {
	if asked <= 0 {
		asked = runtime.GOMAXPROCS(0)
	}
	return min(max(asked, 1), maxShards)
}

// destPart is one shard's receivers: plain ones share one datagram,
// sealed ones get theirs each.
type destPart struct {
	plain  []*net.UDPAddr
	sealed []sealedDest
}

// sendOut is what a send did: datagrams, their bytes, the first error.
type sendOut struct {
	sent, octets int
	err          error
}

func (o *sendOut) add(p sendOut) {
	o.sent += p.sent
	o.octets += p.octets
	if o.err == nil {
		o.err = p.err
	}
}

// shardFunc sends to one shard's part through that shard's fanout.
type shardFunc func(fo *fanout, p *destPart) sendOut

// shardJob is one shard's share of a send.
type shardJob struct {
	f    shardFunc
	part *destPart
	out  *sendOut
}

// crew is a session's senders while it runs: its own goroutine is shard 0,
// one goroutine more per further shard. One send at a time: each returns
// when every shard is done, so packets leave in order and Sender Reports
// follow the packets they count.
type crew struct {
	e    *Engine
	fos  []*fanout
	jobs []chan shardJob // jobs[i-1] feeds shard i
	outs []sendOut
	wg   sync.WaitGroup // the shards' jobs in flight
	quit sync.WaitGroup // the shards' goroutines
}

func newCrew(e *Engine) *crew {
	c := &crew{e: e, outs: make([]sendOut, len(e.senders))}
	for i, s := range e.senders {
		c.fos = append(c.fos, newFanout(s.conn, s.batchWriter()))
		if i == 0 {
			continue
		}
		ch := make(chan shardJob, 1)
		c.jobs = append(c.jobs, ch)
		c.quit.Add(1)
		go c.work(c.fos[i], ch)
	}
	return c
}

func (c *crew) work(fo *fanout, jobs <-chan shardJob) {
	defer c.quit.Done()
	for j := range jobs {
		*j.out = j.f(fo, j.part)
		c.wg.Done()
	}
}

// close stops the shards' goroutines and waits for them.
func (c *crew) close() {
	for _, ch := range c.jobs {
		close(ch)
	}
	c.quit.Wait()
}

// each runs f on every shard's part of d, in parallel when the fan-out
// is large enough, and sums what they sent.
func (c *crew) each(d *destSet, f shardFunc) sendOut {
	var tot sendOut
	if len(d.parts) != len(c.fos) || len(c.jobs) == 0 || d.n < c.e.shardMin {
		for i := range d.parts {
			tot.add(f(c.fos[0], &d.parts[i]))
		}
		return tot
	}
	c.wg.Add(len(c.jobs))
	for i, ch := range c.jobs {
		ch <- shardJob{f: f, part: &d.parts[i+1], out: &c.outs[i+1]}
	}
	c.outs[0] = f(c.fos[0], &d.parts[0])
	c.wg.Wait()
	for i, o := range c.outs {
		c.e.shardSent[i].Add(uint64(o.sent))
		tot.add(o)
	}
	return tot
}

// sealRTP is the shardFunc that sends one RTP packet (hdr, payload) to a
// part: as it is to plain receivers, sealed under each one's key with the
// packet's index to sealed ones.
func sealRTP(hdr, payload, pkt []byte, index uint64) shardFunc {
	return func(fo *fanout, p *destPart) sendOut {
		var o sendOut
		o.sent, o.err = fo.send(hdr, payload, p.plain)
		o.octets = o.sent * (len(hdr) + len(payload))
		if len(p.sealed) > 0 {
			h := &fo.hdr
			k, nb, err := fo.sendSealed(p.sealed, func(d *sealedDest, dst []byte) ([]byte, error) {
				return d.tx.rtp(dst, pkt, h, index)
			})
			o.add(sendOut{sent: k, octets: nb, err: err})
		}
		return o
	}
}

// sealRTCP is the shardFunc that sends the RTCP compound b to a part: as
// it is to plain receivers, as SRTCP under each one's key to sealed ones.
func sealRTCP(b []byte) shardFunc {
	return func(fo *fanout, p *destPart) sendOut {
		var o sendOut
		o.sent, o.err = fo.send(b, nil, p.plain)
		if len(p.sealed) > 0 {
			k, nb, err := fo.sendSealed(p.sealed, func(d *sealedDest, dst []byte) ([]byte, error) {
				return d.tx.rtcp(dst, b)
			})
			o.add(sendOut{sent: k, octets: nb, err: err})
		}
		return o
	}
}
