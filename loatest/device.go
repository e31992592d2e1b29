package loatest

import (
	"encoding/json"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/protocol"
)

// DeviceConfig describes a Device.
type DeviceConfig struct {
	ID       string // the device id: its topics are loa/v1/dev/{ID}/…
	ClientID string // MQTT client id; default ID
	Password string // when set, sent with ID as the username
	// Boot and Conn are the pair its Will (offline) and its online status
	// carry; Conn 0 is a receiver from before connection counting.
	Boot, Conn uint64
	// Answer returns the acks to publish for a command; nil (or a nil
	// result) answers nothing.
	Answer func(protocol.Command) []protocol.Ack
}

// Device is a receiver played by a raw paho client, the way firmware does
// it: a retained offline Last Will; on connect it subscribes to its own
// cmd topic, then publishes a retained online status; commands are
// answered with acks by Answer.
type Device struct {
	tb     testing.TB
	cfg    DeviceConfig
	c      mqtt.Client
	cmds   chan protocol.Command
	work   chan protocol.Command
	done   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once

	mu   sync.Mutex
	conn net.Conn // the current TCP connection, for abrupt drops
}

// ConnectDevice connects a device to the broker at brokerURL and returns
// once the broker has acknowledged its online status. It disconnects
// cleanly (no Will) when the test ends.
func ConnectDevice(tb testing.TB, brokerURL string, cfg DeviceConfig) *Device {
	tb.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.ID
	}
	d := &Device{tb: tb, cfg: cfg, cmds: make(chan protocol.Command, 1000),
		work: make(chan protocol.Command, 1000), done: make(chan struct{})}
	statusTopic := protocol.DeviceTopic(cfg.ID, protocol.KindStatus)
	will, _ := json.Marshal(protocol.Status{Online: false, Boot: cfg.Boot, Conn: cfg.Conn})
	announced := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(cfg.ClientID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetBinaryWill(statusTopic, will, 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			if err == nil {
				d.mu.Lock()
				d.conn = c
				d.mu.Unlock()
			}
			return c, err
		}).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Like firmware: subscribe to commands, then announce. No
			// test assertion here: this runs on paho's goroutine.
			c.Subscribe(protocol.DeviceTopic(cfg.ID, protocol.KindCmd), 1, d.command).WaitTimeout(Wait)
			online, _ := json.Marshal(protocol.Status{Online: true, Boot: cfg.Boot, Conn: cfg.Conn, TS: time.Now().UnixMilli()})
			tok := c.Publish(statusTopic, 1, true, online)
			tok.WaitTimeout(Wait)
			select {
			case announced <- tok.Error():
			default:
			}
		})
	if cfg.Password != "" {
		opts.SetUsername(cfg.ID).SetPassword(cfg.Password)
	}
	d.c = mqtt.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(Wait) || tok.Error() != nil {
		tb.Fatalf("device %s (client %s) connect: %v", cfg.ID, cfg.ClientID, tok.Error())
	}
	d.wg.Add(1)
	go d.respond()
	tb.Cleanup(d.Close)
	select {
	case err := <-announced:
		if err != nil {
			tb.Fatalf("device %s online: %v", cfg.ID, err)
		}
	case <-time.After(Wait):
		tb.Fatalf("device %s never announced itself online", cfg.ID)
	}
	return d
}

func (d *Device) command(_ mqtt.Client, m mqtt.Message) {
	cmd, err := protocol.DecodeCommand(m.Payload())
	if err != nil {
		d.tb.Errorf("device %s: bad command %q: %v", d.cfg.ID, m.Payload(), err)
		return
	}
	d.cmds <- cmd
	d.work <- cmd // answered off paho's router goroutine
}

func (d *Device) respond() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case cmd := <-d.work:
			if d.cfg.Answer == nil {
				continue
			}
			for _, a := range d.cfg.Answer(cmd) {
				d.Publish(protocol.KindAck, a, false)
			}
		}
	}
}

// ID is the device id.
func (d *Device) ID() string { return d.cfg.ID }

// Commands receives every command the device got, in order (up to 1000
// unread).
func (d *Device) Commands() <-chan protocol.Command { return d.cmds }

// Client is the device's paho client, for publishing what Publish does
// not (another QoS, a foreign topic).
func (d *Device) Client() mqtt.Client { return d.c }

// Publish sends v as JSON on the device's topic of kind, at the QoS the
// contract gives it.
func (d *Device) Publish(kind string, v any, retained bool) {
	b, err := json.Marshal(v)
	if err != nil {
		d.tb.Errorf("device %s: %v", d.cfg.ID, err)
		return
	}
	d.PublishRaw(kind, b, retained)
}

// PublishRaw sends b as it is on the device's topic of kind.
func (d *Device) PublishRaw(kind string, b []byte, retained bool) {
	tok := d.c.Publish(protocol.DeviceTopic(d.cfg.ID, kind), protocol.QoS[kind], retained, b)
	if !tok.WaitTimeout(Wait) || tok.Error() != nil {
		d.tb.Errorf("device %s publish %s: %v", d.cfg.ID, kind, tok.Error())
	}
}

// Drop kills the TCP connection without a DISCONNECT, as a 4G box losing
// power does: the broker then publishes the Last Will.
func (d *Device) Drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn.Close()
}

// Close stops answering and disconnects cleanly (no Will). The test's
// end calls it; calling it earlier is fine.
func (d *Device) Close() {
	d.closed.Do(func() {
		close(d.done)
		d.wg.Wait()
		d.c.Disconnect(0)
	})
}
