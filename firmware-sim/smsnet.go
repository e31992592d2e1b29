package firmwaresim

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// SMSNetwork is a simulated mobile network's SMS service, in process:
// phones (receivers' modems, the controller's gateway number) attach by
// number and get each SMS sent to them, in order, on a goroutine of their
// own, as a real network delivers independently of the sender. It is the
// SMS path of tests and of cmd/firmware-sim; it carries text only, like
// the gateways the controller uses.
type SMSNetwork struct {
	mu     sync.Mutex
	phones map[string]*smsPhone
	sent   int
	lost   int
	down   bool
}

type smsPhone struct {
	in   chan smsMsg
	done chan struct{}
}

type smsMsg struct{ from, text string }

// ErrSMSUndeliverable is Send's error for a number no phone is attached
// to, a full inbox, or a network that is down.
var ErrSMSUndeliverable = errors.New("sms: undeliverable")

// NewSMSNetwork returns an empty network.
func NewSMSNetwork() *SMSNetwork {
	return &SMSNetwork{phones: map[string]*smsPhone{}}
}

// Attach makes deliver receive every SMS sent to number until detach is
// called (detach waits for a delivery in progress). A number attached
// twice replaces the first phone.
func (n *SMSNetwork) Attach(number string, deliver func(from, text string)) (detach func()) {
	p := &smsPhone{in: make(chan smsMsg, 64), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for m := range p.in {
			deliver(m.from, m.text)
		}
	}()
	n.mu.Lock()
	old := n.phones[number]
	n.phones[number] = p
	n.mu.Unlock()
	if old != nil {
		close(old.in)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			if n.phones[number] == p {
				delete(n.phones, number)
				close(p.in)
			}
			n.mu.Unlock()
			<-p.done
		})
	}
}

// Send delivers text from number from to number to.
func (n *SMSNetwork) Send(ctx context.Context, from, to, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.phones[to]
	if p == nil || n.down {
		n.lost++
		return fmt.Errorf("%w: %s", ErrSMSUndeliverable, to)
	}
	select {
	case p.in <- smsMsg{from, text}:
		n.sent++
		return nil
	default:
		n.lost++
		return fmt.Errorf("%w: %s's inbox is full", ErrSMSUndeliverable, to)
	}
}

// SetDown makes the network refuse every SMS (true) or carry them again.
func (n *SMSNetwork) SetDown(down bool) {
	n.mu.Lock()
	n.down = down
	n.mu.Unlock()
}

// Counts returns the SMS delivered to a phone's inbox and those refused.
func (n *SMSNetwork) Counts() (sent, lost int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.lost
}

// Gateway is the controller's SMS gateway on this network: it sends from
// number (station.SMSSender).
func (n *SMSNetwork) Gateway(number string) *SMSGateway {
	return &SMSGateway{net: n, number: number}
}

// SMSGateway sends SMS into an SMSNetwork from one number.
type SMSGateway struct {
	net    *SMSNetwork
	number string
}

// SendSMS sends text to number to.
func (g *SMSGateway) SendSMS(ctx context.Context, to, text string) error {
	return g.net.Send(ctx, g.number, to, text)
}
