package bench

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// TestGstArgsSplitsClients: one multiudpsink takes a province's clients
// only up to the kernel's limit on one argument (128 KiB), so the
// pipeline splits them over sinks behind a tee, every client once.
func TestGstArgsSplitsClients(t *testing.T) {
	const n = 12000
	sinks := make([]netip.AddrPort, n)
	for i := range sinks {
		sinks[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(20000+i))
	}
	args := gstArgs("/tmp/x.opus", sinks)
	seen := map[string]bool{}
	elements := 0
	for _, a := range args {
		if len(a) >= 128<<10 {
			t.Errorf("an argument of %d bytes", len(a))
		}
		if c, ok := strings.CutPrefix(a, "clients="); ok {
			elements++
			for _, s := range strings.Split(c, ",") {
				seen[s] = true
			}
		}
	}
	if want := (n + gstClientsPerSink - 1) / gstClientsPerSink; elements != want || len(seen) != n {
		t.Errorf("%d multiudpsink with %d distinct clients, want %d with %d", elements, len(seen), want, n)
	}
	if !strings.Contains(strings.Join(args, " "), "tee name=t t. ! queue ! multiudpsink") {
		t.Errorf("no tee: %.200s", strings.Join(args, " "))
	}
	if one := gstArgs("/tmp/x.opus", sinks[:3]); strings.Contains(strings.Join(one, " "), "tee") {
		t.Errorf("a tee for 3 clients: %v", one)
	}
}

// TestFanoutCoresFlags refuses a core count that compares nothing.
func TestFanoutCoresFlags(t *testing.T) {
	for _, args := range [][]string{{"-cores", "1"}, {"-cores", "2", "-receivers", "10,20"}} {
		if err := benchFanout(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
