package broadcast

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize bounds the messages handed to one sendmmsg call, at the
// kernel's own cap (UIO_MAXIOV): at 10,000 receivers, 1024 a call cost a
// quarter less CPU per datagram than 256 (bench fanout -cores).
const batchSize = 1024

// batchWriter is what ipv4.PacketConn and ipv6.PacketConn share: WriteBatch
// is sendmmsg on Linux and one sendmsg per call elsewhere.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchWriter picks the x/net wrapper that matches the socket's family.
// A dual-stack socket bound to "::" takes IPv4 destinations too: the kernel
// accepts AF_INET addresses on it.
func newBatchWriter(c *net.UDPConn) batchWriter {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return ipv4.NewPacketConn(c)
	}
	return ipv6.NewPacketConn(c)
}

// fanout sends one packet (header + payload) to many destinations with as
// few syscalls as possible, or one sealed packet each (SRTP). Its scratch
// is reused, so a send does not allocate; one fanout belongs to one
// goroutine.
type fanout struct {
	w    batchWriter
	conn *net.UDPConn
	msgs []ipv4.Message
	vecs [][]byte // two per message: the shared header, then the shared payload
	// arena holds a batch's sealed datagrams end to end: they are
	// written and then copied by the kernel from a few contiguous pages,
	// not from a 1.5 KB buffer each (1.5 MB and a TLB miss apiece).
	arena []byte
	hdr   rtp.Header // what the SRTP sealer parses a packet's header into
}

func newFanout(c *net.UDPConn, w batchWriter) *fanout {
	return &fanout{w: w, conn: c}
}

// grow makes room for n messages.
func (f *fanout) grow(n int) {
	if cap(f.msgs) < n {
		f.msgs = make([]ipv4.Message, n)
		f.vecs = make([][]byte, 2*n)
	}
}

// send writes hdr+payload to every address in dests. The same two buffers
// back every message: nothing is copied per receiver. It returns how many
// datagrams left and the first error; a destination the kernel refuses is
// skipped so one bad address never starves the others.
func (f *fanout) send(hdr, payload []byte, dests []*net.UDPAddr) (int, error) {
	if len(dests) == 0 {
		return 0, nil
	}
	n := min(len(dests), batchSize)
	f.grow(n)
	msgs := f.msgs[:n]
	for i := range msgs {
		v := f.vecs[2*i : 2*i+2 : 2*i+2]
		v[0], v[1] = hdr, payload
		msgs[i].Buffers = v
	}
	sent := 0
	var first error
	for len(dests) > 0 {
		chunk := msgs[:min(len(dests), len(msgs))]
		for i := range chunk {
			chunk[i].Addr = dests[i]
		}
		k, err := f.write(chunk)
		sent += k
		dests = dests[len(chunk):]
		if err != nil && first == nil {
			first = err
		}
	}
	return sent, first
}

// sealedSize is the room for one sealed datagram: the largest RTP or RTCP
// packet the engine sends plus the SRTP/SRTCP trailer.
const sealedSize = maxDatagram + 64

// sendSealed sends each destination its own datagram, which seal writes
// into dst (capacity sealedSize) and returns. A destination whose seal
// fails is skipped. It returns how many datagrams left, their bytes and
// the first error.
func (f *fanout) sendSealed(dests []sealedDest, seal func(d *sealedDest, dst []byte) ([]byte, error)) (sent, octets int, first error) {
	if len(dests) == 0 {
		return 0, 0, nil
	}
	n := min(len(dests), batchSize)
	f.grow(n)
	if len(f.arena) < n*sealedSize {
		f.arena = make([]byte, n*sealedSize)
	}
	for len(dests) > 0 {
		k := min(len(dests), n)
		m, off := 0, 0
		for i := range dests[:k] {
			warm(dests[:k], i)
			// Each slot takes at most sealedSize, so one always fits.
			b, err := seal(&dests[i], f.arena[off:off:off+sealedSize])
			if err != nil {
				if first == nil {
					first = fmt.Errorf("seal: %w", err)
				}
				continue
			}
			off += min((len(b)+15)&^15, sealedSize)
			v := f.vecs[2*m : 2*m+1 : 2*m+1]
			v[0] = b
			f.msgs[m].Buffers, f.msgs[m].Addr = v, dests[i].ua
			m++
		}
		dests = dests[k:]
		w, err := f.write(f.msgs[:m])
		sent += w
		for i := range f.msgs[:m] {
			octets += len(f.vecs[2*i])
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return sent, octets, first
}

// warmAhead is how many receivers ahead of the sealing warm prefetches
// each level: sealing one takes ~0.2 µs, so a level has ~1 µs to arrive.
const warmAhead = 4

// warm prefetches what sealing and addressing dests will read, called
// before dests[i] is sealed, for i = 0, 1, …. A receiver's state is a
// chain of heap objects (srtpTx and address, then sealer and IP bytes,
// then the cipher's key schedule and GHASH table), cold at 10,000
// receivers: left to the sealing, its misses come one after another and
// cost more than the cipher. Each level is prefetched warmAhead receivers
// before the next (whose addresses it holds), a receiver's at a time so
// the CPU's miss buffers never fill.
func warm(dests []sealedDest, i int) {
	if i == 0 { // nothing ahead yet
		for j := range min(3*warmAhead, len(dests)) {
			prefetchAddr(&dests[j])
		}
		for j := range min(2*warmAhead, len(dests)) {
			prefetchSealer(&dests[j])
		}
		for j := range min(warmAhead, len(dests)) {
			prefetchCipher(&dests[j])
		}
	}
	if j := i + warmAhead; j < len(dests) {
		prefetchCipher(&dests[j])
	}
	if j := i + 2*warmAhead; j < len(dests) {
		prefetchSealer(&dests[j])
	}
	if j := i + 3*warmAhead; j < len(dests) {
		prefetchAddr(&dests[j])
	}
}

// prefetchAddr is the first level: the address and the srtpTx.
func prefetchAddr(d *sealedDest) {
	prefetch(unsafe.Pointer(d.ua), unsafe.Sizeof(*d.ua))
	if d.tx != nil {
		prefetch(unsafe.Pointer(d.tx), unsafe.Sizeof(*d.tx))
	}
}

// prefetchSealer is the second: the IP's bytes and the sealer.
func prefetchSealer(d *sealedDest) {
	if len(d.ua.IP) > 0 {
		prefetch(unsafe.Pointer(&d.ua.IP[0]), uintptr(len(d.ua.IP)))
	}
	if d.tx != nil && d.tx.gcm != nil {
		prefetch(unsafe.Pointer(d.tx.gcm), unsafe.Sizeof(*d.tx.gcm))
	}
}

// prefetchCipher is the last: the cipher's state.
func prefetchCipher(d *sealedDest) {
	if d.tx != nil && d.tx.gcm != nil {
		prefetch(d.tx.gcm.mem, d.tx.gcm.size)
	}
}

// write sends msgs, going on past a message the kernel refuses. It returns
// how many left and the first error.
func (f *fanout) write(msgs []ipv4.Message) (int, error) {
	sent := 0
	var first error
	for len(msgs) > 0 {
		k, err := f.w.WriteBatch(msgs, 0)
		if k <= 0 && err == nil {
			err = syscall.EIO // never spin on a call that makes no progress
		}
		k = max(k, 0)
		sent += k
		msgs = msgs[k:]
		if err != nil {
			if first == nil {
				first = err
			}
			if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.ENOSYS) {
				// The batch path cannot take this address; send the rest one by one.
				s, err := f.sendEach(msgs)
				return sent + s, errors.Join(first, err)
			}
			if len(msgs) > 0 {
				msgs = msgs[1:] // the message that failed
			}
		}
	}
	return sent, first
}

// sendEach is the fallback for sockets or addresses sendmmsg refuses.
func (f *fanout) sendEach(msgs []ipv4.Message) (int, error) {
	var buf [sealedSize]byte
	sent := 0
	var first error
	for _, m := range msgs {
		n := 0
		for _, b := range m.Buffers {
			n += copy(buf[n:], b)
		}
		if _, err := f.conn.WriteTo(buf[:n], m.Addr); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		sent++
	}
	return sent, first
}
