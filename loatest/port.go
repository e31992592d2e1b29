package loatest

import (
	"net"
	"testing"
)

// FreePort returns a port of network ("tcp" or "udp") that was free on
// 127.0.0.1 a moment ago, for a program that must be told its port
// before it starts (Mosquitto, ffmpeg, a daemon restarted on the same
// address). Prefer ":0" wherever the listener can report its address.
func FreePort(tb testing.TB, network string) int {
	tb.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	tb.Fatalf("FreePort: network %q, want tcp or udp", network)
	return 0
}
