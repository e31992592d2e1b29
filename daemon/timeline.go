package daemon

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"github.com/loa-broadcast/loa/broadcast"
	"github.com/loa-broadcast/loa/store"
)

// openNTP starts the SNTP responder when -ntp-addr is set and returns the
// reference clock session SDPs name (RFC 7273 ts-refclk): "ntp=host[:port]"
// with the host receivers reach the controller at (-rtp-public's, else the
// responder's own), or "" (local) without it.
func (m *Main) openNTP(ctx context.Context) (string, error) {
	cfg := m.Config
	if cfg.NTPAddr == "" {
		return "", nil
	}
	stratum := cfg.NTPStratum
	if stratum == 0 {
		stratum = 2
	}
	s, err := broadcast.ListenSNTP(ctx, cfg.NTPAddr, stratum, m.Logger.With("component", "sntp"))
	if err != nil {
		return "", err
	}
	m.NTP = s
	host := s.Addr().Addr().Unmap()
	name := host.String()
	if h, _, err := net.SplitHostPort(cfg.RTPPublic); err == nil && h != "" {
		name = h
	} else if host.IsUnspecified() {
		name = netip.AddrFrom4([4]byte{127, 0, 0, 1}).String()
	}
	if port := s.Addr().Port(); port != 123 {
		name = net.JoinHostPort(name, strconv.Itoa(int(port)))
	} else if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		name = "[" + name + "]" // a URI host (RFC 7273 §4.8)
	}
	return "ntp=" + name, nil
}

// deviceOffsets gives the engine each receiver's delay offset from its
// record (PATCH /api/v1/devices/{id}); a device it cannot read has none.
type deviceOffsets struct{ db *store.DB }

func (o deviceOffsets) OffsetMs(id string) int {
	d, err := o.db.Device(context.Background(), id)
	if err != nil {
		return 0
	}
	return d.OffsetMs
}
