package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// NewInlineClient returns a client of paho's interface that talks to this
// broker in-process through mochi's inline client, for a controller that
// embeds the broker: what it subscribes to is handed to it on the
// publishing device's own broker goroutine, and what it publishes enters
// the broker as a function call. With thousands of devices this removes,
// per message, a broker write and a client read on loopback TCP and the
// four goroutine hand-offs of paho's client, which were most of the
// controller's CPU not spent in mochi itself (see BenchmarkInlineVsTCP).
//
// It honours the options the controller uses: the default publish
// handler, OnConnect (run in its own goroutine, as paho does) and
// subscription callbacks. Subscribing delivers the matching retained
// messages, as a broker does to a new subscription. The inline client
// bypasses authentication and the ACL, like the controller's own account.
// Every token it returns is already complete.
func (b *Broker) NewInlineClient(o *paho.ClientOptions) paho.Client {
	return &inlineClient{b: b, opts: o, subs: map[string]int{}}
}

type inlineClient struct {
	b    *Broker
	opts *paho.ClientOptions

	open atomic.Bool
	mu   sync.Mutex
	subs map[string]int // filter → mochi inline subscription id
}

// inlineSubIDs are unique over the process: mochi keys inline
// subscriptions by (filter, id).
var inlineSubIDs atomic.Int64

var errInlineClosed = errors.New("broker: inline client not connected")

func (c *inlineClient) IsConnected() bool      { return c.open.Load() }
func (c *inlineClient) IsConnectionOpen() bool { return c.open.Load() }

func (c *inlineClient) Connect() paho.Token {
	c.b.mu.Lock()
	ok := c.b.started && !c.b.closed
	c.b.mu.Unlock()
	if !ok {
		return doneToken{errors.New("broker: not running")}
	}
	c.open.Store(true)
	if c.opts.OnConnect != nil {
		go c.opts.OnConnect(c)
	}
	return doneToken{}
}

// Disconnect drops the client's subscriptions; nothing more is delivered
// once it returns but what a broker goroutine is handing over right now.
func (c *inlineClient) Disconnect(uint) {
	if !c.open.Swap(false) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for filter, id := range c.subs {
		_ = c.b.srv.Unsubscribe(filter, id) // errors only for an invalid filter, checked at Subscribe
	}
	clear(c.subs)
}

func (c *inlineClient) Publish(topic string, qos byte, retained bool, payload any) paho.Token {
	if !c.open.Load() {
		return doneToken{errInlineClosed}
	}
	var b []byte
	switch p := payload.(type) {
	case []byte:
		b = p
	case string:
		b = []byte(p)
	default:
		return doneToken{fmt.Errorf("broker: unknown payload type %T", payload)}
	}
	// mochi delivers an inline publish at the subscribers' QoS; devices
	// acknowledge it to the broker as usual.
	return doneToken{c.b.srv.Publish(topic, b, retained, qos)}
}

func (c *inlineClient) Subscribe(topic string, qos byte, callback paho.MessageHandler) paho.Token {
	return c.SubscribeMultiple(map[string]byte{topic: qos}, callback)
}

func (c *inlineClient) SubscribeMultiple(filters map[string]byte, callback paho.MessageHandler) paho.Token {
	if !c.open.Load() {
		return doneToken{errInlineClosed}
	}
	handler := callback
	if handler == nil {
		handler = c.opts.DefaultPublishHandler
	}
	if handler == nil {
		return doneToken{errors.New("broker: inline subscription without a handler")}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for filter := range filters {
		if old, ok := c.subs[filter]; ok { // resubscribing replaces, as in MQTT
			_ = c.b.srv.Unsubscribe(filter, old)
		}
		id := int(inlineSubIDs.Add(1))
		fn := func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			handler(c, inlineMessage{pk})
		}
		if err := c.b.srv.Subscribe(filter, id, fn); err != nil {
			return doneToken{fmt.Errorf("broker: inline subscribe %s: %w", filter, err)}
		}
		c.subs[filter] = id
	}
	return doneToken{}
}

func (c *inlineClient) Unsubscribe(topics ...string) paho.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		if id, ok := c.subs[t]; ok {
			_ = c.b.srv.Unsubscribe(t, id)
			delete(c.subs, t)
		}
	}
	return doneToken{}
}

// AddRoute is not supported: the controller uses subscription callbacks
// and the default handler only.
func (c *inlineClient) AddRoute(string, paho.MessageHandler) {}

func (c *inlineClient) OptionsReader() paho.ClientOptionsReader {
	return paho.NewOptionsReader(c.opts)
}

// inlineMessage is a delivered publish in paho's Message interface.
type inlineMessage struct{ pk packets.Packet }

func (m inlineMessage) Duplicate() bool   { return m.pk.FixedHeader.Dup }
func (m inlineMessage) Qos() byte         { return m.pk.FixedHeader.Qos }
func (m inlineMessage) Retained() bool    { return m.pk.FixedHeader.Retain }
func (m inlineMessage) Topic() string     { return m.pk.TopicName }
func (m inlineMessage) MessageID() uint16 { return m.pk.PacketID }
func (m inlineMessage) Payload() []byte   { return m.pk.Payload }
func (m inlineMessage) Ack()              {}

// doneToken is a token whose operation has completed.
type doneToken struct{ err error }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (t doneToken) Wait() bool                     { return true }
func (t doneToken) WaitTimeout(time.Duration) bool { return true }
func (t doneToken) Done() <-chan struct{}          { return closedChan }
func (t doneToken) Error() error                   { return t.err }
