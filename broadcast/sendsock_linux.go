package broadcast

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// reusePort marks the media socket SO_REUSEPORT before it is bound, so the
// shards' send-only sockets can bind its address too.
var reusePort = func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

// openSendSockets opens k send-only sockets bound to conn's address in its
// SO_REUSEPORT group, after attaching to the group a classic BPF program
// that hands every datagram arriving at the port to socket 0: conn, bound
// first, whose one reader authenticates RTCP as before. Nobody waits on
// the send sockets (they are blocking descriptors outside Go's poller), so
// freeing a datagram sent wakes nothing; on conn, whose reader sleeps in
// epoll, each one would (sock_wfree → ep_poll_callback).
func openSendSockets(conn *net.UDPConn, k int) ([]sender, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		local  unix.Sockaddr
		v6only int
		serr   error
	)
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	err = rc.Control(func(fd uintptr) {
		if local, serr = unix.Getsockname(int(fd)); serr != nil {
			return
		}
		if _, is6 := local.(*unix.SockaddrInet6); is6 {
			if v6only, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); serr != nil {
				return
			}
		}
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, fmt.Errorf("broadcast: steer the media port to its reader: %w", err)
	}
	var out []sender
	for range k {
		w, err := newRawWriter(local, v6only)
		if err != nil {
			closeSenders(append([]sender{{conn: conn}}, out...))
			return nil, err
		}
		out = append(out, sender{conn: conn, close: w.close,
			// Its scratch is the caller's: sessions running at once each
			// have their own, over the one socket.
			writer: func() batchWriter { return &rawWriter{fd: w.fd, v6: w.v6} }})
	}
	return out, nil
}

// rawWriter is a send-only UDP socket written with sendmmsg(2) directly:
// a batchWriter for one shard of one session (its scratch is not shared).
type rawWriter struct {
	fd   int
	v6   bool
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	sa4  []unix.RawSockaddrInet4
	sa6  []unix.RawSockaddrInet6
}

// sendTimeout bounds a blocked send (a full send buffer): the message is
// then skipped as the kernel refused it.
const sendTimeout = 1e9 // ns

func newRawWriter(local unix.Sockaddr, v6only int) (*rawWriter, error) {
	family := unix.AF_INET
	if _, is6 := local.(*unix.SockaddrInet6); is6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("broadcast: send socket: %w", err)
	}
	tv := unix.NsecToTimeval(sendTimeout)
	err = errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv))
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer) // capped by wmem_max; harmless
	if err == nil {
		err = unix.Bind(fd, local)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("broadcast: send socket on the media port: %w", err)
	}
	return &rawWriter{fd: fd, v6: family == unix.AF_INET6}, nil
}

func (w *rawWriter) close() error { return unix.Close(w.fd) }

// WriteBatch sends ms in one sendmmsg call and returns how many left. A
// message whose address the socket cannot take ends the batch before it
// (EAFNOSUPPORT when it is the first: fanout sends it another way).
func (w *rawWriter) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if len(w.hdrs) < len(ms) {
		w.hdrs = make([]unix.Mmsghdr, len(ms))
		w.iovs = make([]unix.Iovec, 2*len(ms))
		w.sa4 = make([]unix.RawSockaddrInet4, len(ms))
		w.sa6 = make([]unix.RawSockaddrInet6, len(ms))
	}
	n, iv := 0, 0
	for _, m := range ms {
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok || ua.Port <= 0 || ua.Port > 0xffff || len(m.Buffers) > 2 {
			break
		}
		h := &w.hdrs[n]
		*h = unix.Mmsghdr{}
		port := uint16(ua.Port)
		if w.v6 {
			ip := ua.IP.To16()
			if ip == nil {
				break
			}
			sa := &w.sa6[n]
			*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: port<<8 | port>>8}
			copy(sa.Addr[:], ip)
			h.Hdr.Name, h.Hdr.Namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet6
		} else {
			ip := ua.IP.To4()
			if ip == nil {
				break
			}
			sa := &w.sa4[n]
			*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: port<<8 | port>>8}
			copy(sa.Addr[:], ip)
			h.Hdr.Name, h.Hdr.Namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4
		}
		first := iv
		for _, b := range m.Buffers {
			if len(b) == 0 {
				continue
			}
			w.iovs[iv] = unix.Iovec{Base: &b[0]}
			w.iovs[iv].SetLen(len(b))
			iv++
		}
		if iv > first {
			h.Hdr.Iov = &w.iovs[first]
			h.Hdr.SetIovlen(iv - first)
		}
		n++
	}
	if n == 0 {
		return 0, os.NewSyscallError("sendmmsg", unix.EAFNOSUPPORT)
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(w.fd), uintptr(unsafe.Pointer(&w.hdrs[0])), uintptr(n), uintptr(flags), 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return 0, os.NewSyscallError("sendmmsg", e)
		}
		return int(r), nil
	}
}
