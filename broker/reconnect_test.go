package broker

import (
	"net"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/protocol"
)

// A device whose connection drops and that reconnects at once, while the
// broker is still cleaning up the old connection, hears its commands on
// the new one. mochi's clean-up deleted the new client's id from its
// table in that window (the device stayed subscribed but deaf); a few
// in a hundred fast reconnects hit it.
func TestFastReconnectIsHeard(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	topic := protocol.DeviceTopic("d1", protocol.KindCmd)
	for i := range 100 {
		var conn net.Conn
		old := mustConnect(t, clientOptions(b, "d1", "d1", "p1").
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				c, err := net.Dial("tcp", u.Host)
				conn = c
				return c, err
			}))
		_ = conn.Close() // the link drops; the broker notices and cleans up

		got := make(chan struct{}, 1)
		dev := mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
		if tok := dev.Subscribe(topic, 1, func(paho.Client, paho.Message) {
			select {
			case got <- struct{}{}:
			default:
			}
		}); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("reconnect %d: subscribe: %v", i, tok.Error())
		}
		publish(t, ctl, topic, 1, false, "ping")
		select {
		case <-got:
		case <-time.After(wait):
			t.Fatalf("reconnect %d: the device's new connection heard nothing", i)
		}
		dev.Disconnect(0)
		old.Disconnect(0)
	}
}
