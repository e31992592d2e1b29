package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/loa-broadcast/loa/live"
	"github.com/loa-broadcast/loa/station"
)

// openLive starts the WebRTC (WHIP) ingest of live microphones on
// cfg.LiveBind, one UDP port for every client; none without it.
func (m *Main) openLive(cfg Config) error {
	if cfg.LiveBind == "" {
		return nil
	}
	lc := live.Config{Bind: cfg.LiveBind, Public: splitComma(cfg.LivePublic), UplinkTimeout: cfg.LiveUplinkTimeout,
		Logger: m.Logger.With("component", "live")}
	if cfg.LiveTURN != "" {
		lc.ICEServers = []webrtc.ICEServer{{URLs: splitComma(cfg.LiveTURN), Username: cfg.LiveTURNUser, Credential: cfg.LiveTURNPass}}
	}
	s, err := live.New(lc)
	if err != nil {
		return fmt.Errorf("live: %w", err)
	}
	m.liveServer = s
	m.liveCollectors = s.Collectors()
	m.Live = station.NewLive(m.DB, m.Sessions, liveUplinks{s}, m.Logger.With("component", "live"))
	m.Live.Loss = m.Engine.ReceiverLoss
	return nil
}

// LiveAddr is the UDP address of the WebRTC ingest (invalid without one).
func (m *Main) LiveAddr() string {
	if m.liveServer == nil {
		return ""
	}
	return m.liveServer.LocalAddr().String()
}

func (m *Main) closeLive() error {
	if m.liveServer == nil {
		return nil
	}
	err := m.liveServer.Close()
	m.liveServer = nil
	return err
}

// liveUplinks adapts live.Server to station.Uplinks.
type liveUplinks struct{ s *live.Server }

func (l liveUplinks) Accept(ctx context.Context, offer string, loss func() uint8) (station.Uplink, string, error) {
	u, answer, err := l.s.Accept(ctx, offer, live.Options{Loss: loss})
	if err != nil {
		return nil, "", err
	}
	return u, answer, nil
}

// splitComma reads a comma-separated list.
func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
