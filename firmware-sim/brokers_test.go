package firmwaresim

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// devicePasswords is the brokers' Authenticator: device id → password.
type devicePasswords map[string]string

func (d devicePasswords) CheckDeviceCredentials(_ context.Context, id, password string) (bool, error) {
	want, ok := d[id]
	return ok && want == password, nil
}

// startClusterBroker starts the controller's embedded broker as one node
// of a cluster, on standby (a follower) or accepting (the leader).
func startClusterBroker(t *testing.T, standby bool) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", ControllerUser: "ctl", ControllerPassword: "ctl-pw",
		Auth: devicePasswords{"rx1": "pw1"}, Standby: standby, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// A receiver given two controllers' brokers connects to the one that
// accepts it (the first answers CONNACK 3), and follows leadership when it
// moves: dropped by the old leader's broker, refused by it on the next
// round, it lands on the new leader's and takes commands there; and back.
func TestReceiverFollowsTheAcceptingBroker(t *testing.T) {
	a, b := startClusterBroker(t, true), startClusterBroker(t, false)
	urlA, urlB := "tcp://"+a.Addr(), "tcp://"+b.Addr()
	recA := newRecorderAs(t, urlA, "ctl-a", "ctl", "ctl-pw")
	recB := newRecorderAs(t, urlB, "ctl-b", "ctl", "ctl-pw")
	r := startReceiver(t, Config{ID: "rx1", Password: "pw1", Broker: urlA, Brokers: []string{urlB, urlA}})
	if r.Broker() != urlB {
		t.Fatalf("receiver on %s, want the accepting %s", r.Broker(), urlB)
	}
	if a.Stats().Standby == 0 {
		t.Error("the standby broker refused nobody")
	}
	online := func(rec *recorder, conn uint64) {
		t.Helper()
		rec.wait(t, "online status", func(m mqttMsg) bool {
			s, err := protocol.DecodeStatus(m.payload)
			return m.topic == protocol.DeviceTopic("rx1", protocol.KindStatus) && err == nil && s.Online && s.Conn >= conn
		})
	}
	online(recB, 1)

	volume := 40
	for _, step := range []struct {
		leader, follower *broker.Broker
		url              string
		rec              *recorder
	}{{a, b, urlA, recA}, {b, a, urlB, recB}} {
		conn := r.Conn()
		step.leader.SetAccepting(true)
		step.follower.SetAccepting(false)
		loatest.Eventually(t, waitLimit, func() bool { return r.Broker() == step.url && r.Conn() > conn },
			"the receiver moves to "+step.url)
		online(step.rec, conn+1)
		volume += 10
		id := step.rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: volume}, time.Now().Add(time.Minute))
		step.rec.ack(t, "rx1", id, protocol.AckDone)
		if r.Volume() != volume {
			t.Errorf("volume %d after a command through %s, want %d", r.Volume(), step.url, volume)
		}
	}
}

// The wait before a reconnect round is jittered and capped, and a round
// starts after the address last held.
func TestReconnectRounds(t *testing.T) {
	lo := func(int64) int64 { return 0 }
	hi := func(n int64) int64 { return n - 1 }
	for k, want := range [][2]time.Duration{{0, ReconnectMin}, {ReconnectMin / 2, ReconnectMin}, {ReconnectMin / 2, ReconnectMin},
		{ReconnectMin, 2 * ReconnectMin}, {ReconnectMin, 2 * ReconnectMin}, {2 * ReconnectMin, 4 * ReconnectMin}, {ReconnectMax / 2, ReconnectMax}} {
		if k == 6 {
			k = 40
		}
		if got := roundWait(k, lo); got != want[0] {
			t.Errorf("round %d: shortest wait %v, want %v", k, got, want[0])
		}
		if got := roundWait(k, hi); got > want[1] || got < want[1]-time.Nanosecond {
			t.Errorf("round %d: longest wait %v, want %v", k, got, want[1])
		}
	}
	l, err := newBrokerList([]string{"tcp://a:1", "tcp://b:1", "tcp://a:1", "tls://c:2"})
	if err != nil {
		t.Fatal(err)
	}
	names := func(order []*url.URL) (s []string) {
		for _, u := range order {
			s = append(s, u.Host)
		}
		return s
	}
	l.dialing(l.urls[1])
	l.accepted()
	now := time.Now()
	if got, _ := l.nextRound(lo, now); !slices.Equal(names(got), []string{"c:2", "a:1", "b:1"}) {
		t.Errorf("round after holding b: %v", names(got))
	}
	// b left its link check unanswered: out of the rounds for a while.
	l.setAside(now)
	if got, _ := l.nextRound(lo, now.Add(setAsideFor-time.Millisecond)); !slices.Equal(names(got), []string{"c:2", "a:1"}) {
		t.Errorf("round with b set aside: %v", names(got))
	}
	if got, _ := l.nextRound(lo, now.Add(setAsideFor)); !slices.Equal(names(got), []string{"c:2", "a:1", "b:1"}) {
		t.Errorf("round once b's time aside is over: %v", names(got))
	}
	one, _ := newBrokerList([]string{"tcp://a:1"})
	one.setAside(now)
	if got, _ := one.nextRound(lo, now); !slices.Equal(names(got), []string{"a:1"}) {
		t.Errorf("a single broker set aside: %v, want it tried all the same", names(got))
	}
	if got := names(l.fromHeld()); !slices.Equal(got, []string{"b:1", "c:2", "a:1"}) {
		t.Errorf("a new client's order: %v", got)
	}
	if _, err := newBrokerList([]string{"ctl.example:1883"}); err == nil {
		t.Error("an address without a scheme accepted")
	}
}
