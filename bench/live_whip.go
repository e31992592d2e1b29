package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/live"
	"github.com/loa-broadcast/loa/protocol"
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
	// The first click is a second and a half in: time enough to tap.
	tp, err := startTap(ctx, c, lr.session)
	if err != nil {
		return lr, fmt.Errorf("tap: %w", err)
	}
	defer tp.stop()
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
	lr.tap = tp.stop()
	lr.transcoded, lr.ended = end.Transcoded, end.State
	if end.Reason != "" {
		lr.ended += ": " + end.Reason
	}
	return lr, nil
}

// tap receives a session's stream as plain RTP on a loopback socket
// (GET /sessions/{id}/sdp?dest=…&plain=1): the packets every receiver is
// sent, with their timestamps.
type tap struct {
	conn *net.UDPConn
	done chan struct{}
	pkts []tapPacket
	once sync.Once
}

func startTap(ctx context.Context, c *api.Client, id string) (*tap, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(4 << 20)
	var sdp string
	if err := c.Do(ctx, "GET", "/api/v1/sessions/"+id+"/sdp?plain=1&dest="+url.QueryEscape(conn.LocalAddr().String()), "", nil, &sdp); err != nil {
		conn.Close()
		return nil, err
	}
	t := &tap{conn: conn, done: make(chan struct{})}
	go t.read()
	return t, nil
}

func (t *tap) read() {
	defer close(t.done)
	buf := make([]byte, 1500)
	for {
		n, err := t.conn.Read(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != protocol.PayloadType {
			continue // RTCP
		}
		t.pkts = append(t.pkts, tapPacket{seq: p.SequenceNumber, ts: p.Timestamp, payload: bytes.Clone(p.Payload)})
	}
}

// stop closes the socket and returns what came.
func (t *tap) stop() []tapPacket {
	t.once.Do(func() { t.conn.Close() })
	<-t.done
	return t.pkts
}
