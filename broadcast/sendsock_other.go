//go:build !linux

package broadcast

import (
	"errors"
	"net"
	"syscall"
)

// reusePort is nil: the shards send through dups of the media socket.
var reusePort func(network, address string, c syscall.RawConn) error

func openSendSockets(*net.UDPConn, int) ([]sender, error) {
	return nil, errors.New("send-only sockets on the media port are Linux only")
}
