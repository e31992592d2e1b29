package firmwaresim

import (
	"fmt"
	"math/rand"
	"net/url"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// A receiver is given every controller's broker address (CONTRACT.md,
// "Brokers"): only the cluster's leader accepts it, the others answer
// CONNACK 3. It rotates through them, starting after the one it last held
// (a connection lost or refused moves it on), and stays on one that
// accepts. A round tries each address once; between rounds it backs off,
// jittered and capped, so a province's receivers dropped at once by a
// failover do not all come back in the same instant. A broker that left a
// stalled stream's link check unanswered is left out of the rounds for a
// few seconds (setAsideFor).
//
// paho tries its server list in order on every (re)connect attempt and
// moves on at a refused CONNACK; the receiver reorders that list before
// each attempt and paces the attempts itself (paho's own back-off is
// neither jittered nor aware of the rotation).

// Back-off between reconnect rounds: before round k (0 right after a loss)
// the receiver waits a uniform time in [0, ReconnectMin) for k = 0, else
// in [d/2, d] with d = min(ReconnectMin·2^⌊(k−1)/2⌋, ReconnectMax): d
// doubles every second round, so a broker back after a few seconds (a
// restart, a failover) is found about as soon as without jitter, while a
// long outage still spreads a fleet's reconnects over 15–30 s.
const (
	ReconnectMin = time.Second
	ReconnectMax = 30 * time.Second
)

// setAsideFor is how long a broker whose link check went unanswered is
// left out of the rounds while another address is there to try: a frozen
// controller accepts TCP but never answers CONNECT, so each round would
// spend its connect timeout on it while the cluster elects a leader among
// the others. Short, so a controller that only paused (and still leads)
// costs little.
const setAsideFor = 6 * time.Second

// brokerList is a receiver's broker addresses and where it is among them.
type brokerList struct {
	urls []*url.URL // in the order given

	mu       sync.Mutex
	dialed   int       // index of the address last dialed
	held     int       // index of the address of the last connection accepted
	rounds   int       // reconnect rounds since the last accepted connection
	aside    int       // index of the address set aside, -1 none
	asideTil time.Time // until when
}

// newBrokerList parses addrs (duplicates dropped, order kept).
func newBrokerList(addrs []string) (*brokerList, error) {
	l := &brokerList{aside: -1}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return &brokerList{}, fmt.Errorf("broker %q: want scheme://host:port", a)
		}
		if !slices.ContainsFunc(l.urls, func(o *url.URL) bool { return sameBroker(o, u) }) {
			l.urls = append(l.urls, u)
		}
	}
	if len(l.urls) == 0 {
		return l, fmt.Errorf("no broker address")
	}
	return l, nil
}

func sameBroker(a, b *url.URL) bool { return a.Scheme == b.Scheme && a.Host == b.Host }

// order returns the addresses starting at index start.
func (l *brokerList) order(start int) []*url.URL {
	n := len(l.urls)
	out := make([]*url.URL, 0, n)
	for i := range n {
		out = append(out, l.urls[(start+i)%n])
	}
	return out
}

// fromHeld is the order of a fresh client: the address last held first.
func (l *brokerList) fromHeld() []*url.URL {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order(l.held)
}

// dialing records which address a connection is being opened to.
func (l *brokerList) dialing(u *url.URL) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.IndexFunc(l.urls, func(o *url.URL) bool { return sameBroker(o, u) }); i >= 0 {
		l.dialed = i
	}
}

// accepted records that the last address dialed accepted the receiver.
func (l *brokerList) accepted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.rounds = l.dialed, 0
}

// setAside leaves the address held out of the next rounds for
// setAsideFor: its link check went unanswered.
func (l *brokerList) setAside(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.urls) > 1 {
		l.aside, l.asideTil = l.held, now.Add(setAsideFor)
	}
}

// nextRound returns the order of the next reconnect round (after the
// address last held, without one set aside) and how long to wait before
// it.
func (l *brokerList) nextRound(rng func(int64) int64, now time.Time) ([]*url.URL, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.rounds
	l.rounds++
	order := l.order(l.held + 1)
	if l.aside >= 0 && now.Before(l.asideTil) {
		aside := l.urls[l.aside]
		order = slices.DeleteFunc(order, func(u *url.URL) bool { return u == aside })
	}
	return order, roundWait(k, rng)
}

// roundWait is the jittered, capped wait before reconnect round k.
func roundWait(k int, rng func(int64) int64) time.Duration {
	if k == 0 {
		return time.Duration(rng(int64(ReconnectMin)))
	}
	d := ReconnectMin
	for i := 1; i < (k+1)/2 && d < ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, ReconnectMax)
	return d/2 + time.Duration(rng(int64(d/2)+1))
}

// current is the address of the live (or last) connection attempt.
func (l *brokerList) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.urls) == 0 {
		return ""
	}
	return l.urls[l.dialed].String()
}

// Broker returns the broker address the receiver is connected to (or last
// tried).
func (r *Receiver) Broker() string { return r.brokers.current() }

// jitter draws from the receiver's reconnect generator.
func (r *Receiver) jitter(n int64) int64 {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	if n <= 0 {
		return 0
	}
	return r.reconnectRng.Int63n(n)
}

// beforeReconnect runs in paho's reconnect loop before each round: it
// puts the next address first and waits out the back-off, or less if the
// receiver ends or this client was replaced meanwhile.
func (r *Receiver) beforeReconnect(self mqtt.Client, o *mqtt.ClientOptions) {
	order, wait := r.brokers.nextRound(r.jitter, time.Now())
	o.Servers = order
	select {
	case <-r.quit:
		// Ending: the dial refuses; pause a little so paho's loop does not
		// spin until Close or Kill disconnects it.
		time.Sleep(min(wait, 10*time.Millisecond))
		return
	default:
		if r.mqttClient() != self {
			return // replaced by a reboot's client, which disconnected this one
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.quit:
	}
}

// newReconnectRng seeds the back-off's jitter from the receiver's seed.
func newReconnectRng(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed ^ 0xb0ff)) }
