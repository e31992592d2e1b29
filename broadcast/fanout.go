package broadcast

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize bounds the messages handed to one sendmmsg call; the kernel
// caps a call at UIO_MAXIOV (1024) anyway.
const batchSize = 256

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
// few syscalls as possible. Its scratch is reused, so a send does not
// allocate; one fanout belongs to one goroutine.
type fanout struct {
	w    batchWriter
	conn *net.UDPConn
	msgs []ipv4.Message
	vecs [][]byte // two per message: the shared header, then the shared payload
}

func newFanout(c *net.UDPConn, w batchWriter) *fanout {
	return &fanout{w: w, conn: c}
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
	if cap(f.msgs) < n {
		f.msgs = make([]ipv4.Message, n)
		f.vecs = make([][]byte, 2*n)
	}
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
		k, err := f.w.WriteBatch(chunk, 0)
		if k <= 0 && err == nil {
			err = syscall.EIO // never spin on a call that makes no progress
		}
		k = max(k, 0)
		sent += k
		dests = dests[k:]
		if err != nil {
			if first == nil {
				first = err
			}
			if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.ENOSYS) {
				// The batch path cannot take this address; send the rest one by one.
				s, err := f.sendEach(hdr, payload, dests)
				return sent + s, errors.Join(first, err)
			}
			if len(dests) > 0 {
				dests = dests[1:] // the message that failed
			}
		}
	}
	return sent, first
}

// sendEach is the fallback for sockets or addresses sendmmsg refuses.
func (f *fanout) sendEach(hdr, payload []byte, dests []*net.UDPAddr) (int, error) {
	var buf [1500]byte
	n := copy(buf[:], hdr)
	n += copy(buf[n:], payload)
	sent := 0
	var first error
	for _, d := range dests {
		if _, err := f.conn.WriteToUDP(buf[:n], d); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		sent++
	}
	return sent, first
}
