package firmwaresim

import (
	"cmp"
	"slices"
	"strconv"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// heldStore is the paho Store of one broker client: it keeps the outbox's
// QoS 1 publishes until the broker acknowledges them, so that paho's
// resume sends them again on the next connection. paho resumes the store
// on every reconnect, clean session or not, but completes neither the
// token of a publish in flight when the link dropped nor that of one made
// while it reconnects: with a store that kept nothing such a message was
// lost and the outbox waited 10 s on its token. So the outbox does not
// wait on tokens for QoS 1; it waits here, for the PUBACK (Del).
//
// Put keeps a copy and Get hands out a copy: resume sets the DUP flag on
// what Get returns while paho's writer may be writing (and setting the
// length of) the original, a data race with a store that shares packets.
// Retained publishes (the status) are not kept: onConnect publishes the
// status afresh on every connection, and a stale one resumed after it
// would say the wrong connection. Inbound packets are not kept either
// (a clean session: the broker does not expect them again).
type heldStore struct {
	mu   sync.Mutex
	seq  uint64
	pubs map[string]*heldPub
}

// heldPub is one unacknowledged publish.
type heldPub struct {
	pub   packets.PublishPacket
	seq   uint64        // Put order, the order resume sends them in
	done  chan struct{} // closed when acknowledged or dropped
	acked bool          // set before done is closed
}

var _ mqtt.Store = (*heldStore)(nil)

func newHeldStore() *heldStore { return &heldStore{pubs: map[string]*heldPub{}} }

func (s *heldStore) Open() {}

func (s *heldStore) Put(key string, m packets.ControlPacket) {
	p, ok := m.(*packets.PublishPacket)
	if !ok || !outbound(key) || p.Qos == 0 || p.Retain {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.pubs[key]; old != nil {
		close(old.done) // a reused id: the old one is gone (not acked)
	}
	s.seq++
	h := &heldPub{pub: *p, seq: s.seq, done: make(chan struct{})}
	h.pub.Payload = slices.Clone(p.Payload)
	s.pubs[key] = h
}

func (s *heldStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.pubs[key]
	if h == nil {
		return nil
	}
	p := h.pub
	return &p
}

// All lists the held publishes in the order they were put, so a resume
// keeps the outbox's order.
func (s *heldStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.pubs))
	for k := range s.pubs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(s.pubs[a].seq, s.pubs[b].seq) })
	return keys
}

// Del is paho's PUBACK: the broker has the message.
func (s *heldStore) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.pubs[key]; h != nil {
		h.acked = true
		close(h.done)
		delete(s.pubs, key)
	}
}

// Close and Reset (a final disconnect, a first connection) drop
// everything: whoever waits learns the message was not acknowledged.
func (s *heldStore) Close() { s.Reset() }

func (s *heldStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, h := range s.pubs {
		close(h.done)
		delete(s.pubs, k)
	}
}

// held returns the publish with message id mid while it waits for its
// PUBACK, or nil once acknowledged (or never kept).
func (s *heldStore) held(mid uint16) *heldPub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pubs[outboundKey(mid)]
}

// isAcked reports, once h.done is closed, whether the broker acknowledged it.
func (s *heldStore) isAcked(h *heldPub) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return h.acked
}

func outbound(key string) bool { return len(key) > 2 && key[:2] == "o." }

func outboundKey(mid uint16) string { return "o." + strconv.Itoa(int(mid)) }
