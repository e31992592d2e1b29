package bench

import (
	"context"
	"errors"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
)

// configureLive readies the controller's WHIP endpoint on loopback.
func configureLive(cfg *daemon.Config) {}

// runLive sends packets through a WHIP uplink to every receiver.
func runLive(ctx context.Context, m *daemon.Main, c *api.Client, b liveBench, packets [][]byte) (liveRun, error) {
	return liveRun{}, errors.New("not yet")
}
