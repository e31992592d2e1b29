package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func resultsByDevice(rs []loa.GroupResult) map[string]loa.GroupResult {
	m := make(map[string]loa.GroupResult, len(rs))
	for _, r := range rs {
		m[r.Device] = r
	}
	return m
}

// A group command reaches every online device once, with one expiry, and
// settles each: done, failed with the device's reason, timeout for the
// silent one, offline (never sent) for the dropped and the unknown one.
func TestGroupRunSettlesEveryDevice(t *testing.T) {
	b := loatest.StartBroker(t, "")
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	f := openFleet(t, b, Config{Now: func() time.Time { return now }})
	var ok []*loatest.Device
	for i := range 3 {
		ok = append(ok, onlineDevice(t, b, f, fmt.Sprintf("ok-%d", i), answerDone))
	}
	bad := onlineDevice(t, b, f, "bad", func(cmd protocol.Command) []protocol.Ack {
		return []protocol.Ack{{ID: cmd.ID, State: protocol.AckFailed, Code: "failed", Msg: "amp off",
			Result: json.RawMessage(`{"level_db":-120,"passed":false}`)}}
	})
	silent := onlineDevice(t, b, f, "silent", nil)
	stale := onlineDevice(t, b, f, "stale", func(cmd protocol.Command) []protocol.Ack {
		return []protocol.Ack{{ID: cmd.ID, State: protocol.AckExpired}} // its clock is ahead
	})
	gone := onlineDevice(t, b, f, "gone", answerDone)
	w := watchPresence(t, f)
	gone.Drop()
	w.wait(t, "gone", false)

	g, err := f.PrepareGroup(protocol.OpTest, json.RawMessage(`{"duration_ms":100}`),
		[]string{"silent", "ok-2", "gone", "bad", "stale", "ok-0", "never", "ok-1"}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	before := resultsByDevice(g.Results())
	if before["gone"].State != loa.GroupOffline || before["never"].State != loa.GroupOffline || before["ok-0"].State != loa.GroupPending {
		t.Fatalf("prepared results %+v: want offline settled at once, online pending", before)
	}
	res := g.Run(testCtx(t))
	got := resultsByDevice(res)
	for i := 1; i < len(res); i++ {
		if res[i-1].Device >= res[i].Device {
			t.Fatalf("results not sorted by device: %+v", res)
		}
	}
	for i, d := range ok {
		r := got[fmt.Sprintf("ok-%d", i)]
		if r.State != loa.GroupDoneAck || !r.AckedAt.Equal(now) || r.Code != "" || r.Command == "" {
			t.Errorf("ok-%d: %+v, want done with acked_at and its command id", i, r)
		}
		cmd := <-d.Commands()
		if cmd.ID != r.Command || cmd.Op != protocol.OpTest || cmd.Exp != now.Add(300*time.Millisecond).UnixMilli() {
			t.Errorf("ok-%d received %+v, want the group command expiring with its timeout", i, cmd)
		}
		if cr, _ := f.CommandResult(r.Command); cr.State != protocol.AckDone || cr.Device != d.ID() {
			t.Errorf("ok-%d single-command result %+v", i, cr)
		}
	}
	if r := got["bad"]; r.State != loa.GroupFailed || r.Code != loa.EUNAVAILABLE || r.Msg != "amp off" || string(r.Result) != `{"level_db":-120,"passed":false}` {
		t.Errorf("bad: %+v, want failed with the device's message and result", r)
	}
	if r := got["stale"]; r.State != loa.GroupExpired || r.Code != loa.EUNAVAILABLE || r.AckedAt.IsZero() {
		t.Errorf("stale: %+v, want expired", r)
	}
	<-stale.Commands()
	if r := got["silent"]; r.State != loa.GroupTimeout || r.Code != loa.ETIMEOUT || !r.AckedAt.IsZero() {
		t.Errorf("silent: %+v, want timeout", r)
	}
	if r := got["gone"]; r.State != loa.GroupOffline || r.Command != "" {
		t.Errorf("gone: %+v, want offline and not sent", r)
	}
	<-bad.Commands()
	<-silent.Commands()
	select {
	case c := <-gone.Commands():
		t.Errorf("the offline device got %+v", c)
	default:
	}
	if st := f.Stats(); st.Commands != 6 || st.Timeouts != 1 {
		t.Errorf("stats %+v, want 6 commands sent and 1 timeout", st)
	}
	gc := loa.GroupCommand{Results: res}
	gc.Count()
	if want := (loa.GroupTotals{Done: 3, Failed: 1, Expired: 1, Offline: 2, Timeout: 1}); gc.Totals != want {
		t.Errorf("totals %+v, want %+v", gc.Totals, want)
	}
}

func TestGroupRunContextEndsWait(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	onlineDevice(t, b, f, "silent", nil)
	onlineDevice(t, b, f, "quick", answerDone)
	g, err := f.PrepareGroup(protocol.OpVolume, json.RawMessage(`{"level":5}`), []string{"silent", "quick"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the quick device's ack is in.
		for {
			if resultsByDevice(g.Results())["quick"].Final() {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	got := resultsByDevice(g.Run(ctx))
	if got["quick"].State != loa.GroupDoneAck || got["silent"].State != loa.GroupTimeout || got["silent"].Msg != "abandoned: context canceled" {
		t.Errorf("results %+v", got)
	}
}

func TestGroupRunBrokerDown(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{Initial: []loa.DeviceState{{ID: "dev-1", Online: true, Boot: 1}}})
	b.Stop()
	loatest.Eventually(t, waitLimit, func() bool { return !f.client.IsConnectionOpen() }, "fleet notices the broker is gone")
	g, err := f.PrepareGroup(protocol.OpMute, json.RawMessage(`{"muted":true}`), []string{"dev-1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Run(testCtx(t))[0]
	if r.State != loa.GroupFailed || r.Code != loa.EUNAVAILABLE || r.Msg != "not sent: broker connection down until the deadline (1s)" {
		t.Errorf("result %+v, want failed: broker down until the deadline", r)
	}
	if st := f.Stats(); st.Commands != 0 {
		t.Errorf("sent %d commands through a closed connection", st.Commands)
	}
}

func TestPrepareGroupRejectsBadInput(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	for name, c := range map[string]struct {
		op      string
		args    string
		ids     []string
		timeout time.Duration
	}{
		"unknown op":   {"dance", "", []string{"a"}, time.Second},
		"twice":        {protocol.OpTest, "", []string{"a", "b", "a"}, time.Second},
		"bad id":       {protocol.OpTest, "", []string{"a", "B/+"}, time.Second},
		"no timeout":   {protocol.OpTest, "", []string{"a"}, 0},
		"args garbage": {protocol.OpVolume, "{level", []string{"a"}, time.Second},
	} {
		if _, err := f.PrepareGroup(c.op, json.RawMessage(c.args), c.ids, c.timeout); code(err) != loa.EINVALID {
			t.Errorf("%s: %v, want %s", name, err, loa.EINVALID)
		}
	}
	if st := f.Stats(); st.Commands != 0 {
		t.Errorf("bad group commands sent %d commands", st.Commands)
	}
}

// BenchmarkGroupRun fans a volume command out to N devices played by one
// responder client (so the cost measured is the fleet's and the broker's,
// not N device clients') and waits for every ack. It reports the time
// per whole group command and per device.
func BenchmarkGroupRun(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			url := loatest.StartBroker(b, "").URL()
			f, err := Open(context.Background(), Config{Broker: url})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			ids := respondAll(b, url, f, n)
			b.ResetTimer()
			for range b.N {
				g, err := f.PrepareGroup(protocol.OpVolume, json.RawMessage(`{"level":50}`), ids, 30*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range g.Run(context.Background()) {
					if r.State != loa.GroupDoneAck {
						b.Fatalf("%s: %+v", r.Device, r)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/device")
		})
	}
}

// respondAll brings n devices online through one client that publishes
// their retained status and answers every command with done.
func respondAll(b *testing.B, url string, f *Fleet, n int) []string {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("responder").SetCleanSession(true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		b.Fatalf("responder connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(protocol.DeviceFilter(protocol.KindCmd), 1, func(c mqtt.Client, m mqtt.Message) {
		id, _, _ := protocol.ParseDeviceTopic(m.Topic())
		cmd, err := protocol.DecodeCommand(m.Payload())
		if err != nil {
			return
		}
		a, _ := json.Marshal(protocol.Ack{ID: cmd.ID, State: protocol.AckDone})
		c.Publish(protocol.DeviceTopic(id, protocol.KindAck), 1, false, a)
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		b.Fatalf("responder subscribe: %v", tok.Error())
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
		s, _ := json.Marshal(protocol.Status{Online: true, Boot: 1})
		c.Publish(protocol.DeviceTopic(ids[i], protocol.KindStatus), 1, true, s)
	}
	deadline := time.Now().Add(waitLimit)
	for f.Stats().Online < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d devices online", f.Stats().Online, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ids
}

// A group command sent while the controller's broker link is down waits
// for the link (each device says so) instead of failing, and goes out
// once the link is back, within its deadline. A single command is refused
// at once, with when to try again.
func TestGroupRunWaitsOutBrokerOutage(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", answerDone)

	// The controller's link drops and the broker refuses it for a while;
	// the device stays connected.
	refused := b.Refused()
	b.RefuseConnects(true)
	cl, ok := b.Server().Clients.Get(f.cfg.ClientID)
	if !ok {
		t.Fatal("fleet not connected")
	}
	cl.Net.Conn.Close()
	loatest.Eventually(t, waitLimit, func() bool { return !f.LinkUp() && b.Refused() > refused }, "link down, a reconnect refused")

	_, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	var later interface{ RetryAfter() time.Duration }
	if code(err) != loa.EUNAVAILABLE || !errors.As(err, &later) || later.RetryAfter() <= 0 || !strings.Contains(err.Error(), "broker") {
		t.Errorf("single command during the outage: %v, want unavailable with a Retry-After", err)
	}

	g, err := f.PrepareGroup(protocol.OpVolume, json.RawMessage(`{"level":5}`), []string{"dev-1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []loa.GroupResult, 1)
	go func() { done <- g.Run(testCtx(t)) }()
	loatest.Eventually(t, waitLimit, func() bool {
		r := g.Results()[0]
		return r.State == loa.GroupPending && strings.Contains(r.Msg, "waiting for the broker")
	}, "the device waiting for the link")
	if n := f.Stats().Commands; n != 0 {
		t.Errorf("%d commands sent while the link was down", n)
	}

	b.RefuseConnects(false)
	var res []loa.GroupResult
	select {
	case res = <-done:
	case <-time.After(waitLimit):
		t.Fatal("the group command never ended")
	}
	if r := res[0]; r.State != loa.GroupDoneAck || r.Code != "" {
		t.Errorf("result after the outage %+v, want done", r)
	}
	select {
	case c := <-d.Commands():
		if c.Op != protocol.OpVolume {
			t.Errorf("device got %+v", c)
		}
	default:
		t.Error("the device never got the command")
	}
}
