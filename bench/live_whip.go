package bench

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/live"
)

// configureLive readies the controller's WHIP endpoint on loopback.
func configureLive(cfg *daemon.Config) { cfg.LiveBind = "127.0.0.1:0" }

// runLive sends packets through a WHIP uplink (pion, as OBS or a browser
// would) to every receiver, measuring the controller's CPU meanwhile, and
// ends the session with DELETE.
func runLive(ctx context.Context, m *daemon.Main, c *api.Client, b liveBench, packets [][]byte) (liveRun, error) {
	cl, err := live.Dial(ctx, http.DefaultClient, m.URL()+"/api/v1/live?areas=bench", m.AdminToken, "")
	if err != nil {
		return liveRun{}, fmt.Errorf("whip: %w", err)
	}
	defer cl.Hangup()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.Connected(cctx); err != nil {
		return liveRun{}, err
	}
	lr := liveRun{session: path.Base(cl.Resource)}
	type sendResult struct {
		sent   []time.Time
		delays []time.Duration
		err    error
	}
	done := make(chan sendResult, 1)
	go func() {
		sent, delays, err := sendUplink(ctx, cl.Send, packets, b)
		done <- sendResult{sent, delays, err}
	}()
	cpu, err := measureStreaming(ctx, m, lr.session, time.Duration(len(packets))*20*time.Millisecond-time.Second, b.Receivers)
	r := <-done
	if err == nil {
		err = r.err
	}
	if err != nil {
		return lr, err
	}
	lr.cpu, lr.sent = cpu, r.sent
	for k := 0; clickFrame(k) < len(r.delays); k++ {
		if k != skipClick {
			lr.uplink = append(lr.uplink, ms(r.delays[clickFrame(k)]))
		}
	}
	if err := cl.Close(cctx); err != nil {
		return lr, err
	}
	end, err := c.WaitSession(cctx, lr.session)
	if err != nil {
		return lr, err
	}
	lr.transcoded, lr.ended = end.Transcoded, end.State
	if end.Reason != "" {
		lr.ended += ": " + end.Reason
	}
	return lr, nil
}
