//go:build unix

package broadcast

import (
	"net/netip"
	"syscall"

	"github.com/pion/rtp"
)

// verifyQueued reads, without waiting, what sits in each receiver's socket
// queue (the sinks nobody reads keep the first few datagrams of a run) and
// checks each came from the engine and authenticates under the receiver's
// keys (bad); what came from elsewhere (another process's traffic to a
// port a sink reuses) is counted apart. It leaves the queues empty.
func (rx *benchReceivers) verifyQueued() (ok, bad, foreign int) {
	buf := make([]byte, 2048)
	out := make([]byte, 0, 2048)
	var h rtp.Header
	want := rx.from.Load()
	for i, c := range rx.conns {
		sc := rx.keys[i].Load()
		raw, err := c.SyscallConn()
		if err != nil {
			continue
		}
		_ = raw.Read(func(fd uintptr) bool {
			for {
				n, sa, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
				if err != nil {
					return true
				}
				from := netip.AddrPort{}
				if a, is4 := sa.(*syscall.SockaddrInet4); is4 {
					from = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
				}
				b := buf[:n]
				switch {
				case want == nil || from != *want:
					foreign++
				case sc == nil:
					ok++
				case isRTCP(b):
					if _, err := sc.DecryptRTCP(out[:0], b, nil); err != nil {
						bad++
					} else {
						ok++
					}
				default:
					if _, err := sc.DecryptRTP(out[:0], b, &h); err != nil {
						bad++
					} else {
						ok++
					}
				}
			}
		})
	}
	return ok, bad, foreign
}
