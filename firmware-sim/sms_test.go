package firmwaresim

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// smsRig is a receiver's modem on a simulated network, with the station
// key that signs its triggers; the receiver is not started (its modem
// works without MQTT).
type smsRig struct {
	net     *SMSNetwork
	key     ed25519.PrivateKey
	r       *Receiver
	station string
}

func newSMSRig(t *testing.T) *smsRig {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := NewSMSNetwork()
	r := NewReceiver(Config{ID: "rx-1", Password: "pw", StationKey: key.Public().(ed25519.PublicKey),
		SMS: n, MSISDN: "+84900000001", AreaCodes: []string{"01", "20590"}})
	r.startModem()
	t.Cleanup(r.stopModem)
	return &smsRig{net: n, key: key, r: r, station: "+84900000000"}
}

func (g *smsRig) trigger(t *testing.T, seq uint32, area string, expires time.Time, key ed25519.PrivateKey) string {
	t.Helper()
	text, err := protocol.EncodeSMSTrigger(key, protocol.SMSTrigger{Code: 7, Area: area, Repeats: 1, Priority: 240,
		Expires: expires, Seq: seq, Session: "00000000000000" + string("0123456789abcdef"[seq%16]) + "1"})
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func (g *smsRig) send(t *testing.T, text string) {
	t.Helper()
	before := g.r.SMS().Received
	if err := g.net.Send(context.Background(), g.station, "+84900000001", text); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, waitLimit, func() bool { return g.r.SMS().Received > before }, "the modem got the SMS")
}

// Forged, expired, other-area and replayed triggers are refused, each
// counted by its reason, and none moves the highest sequence number; a
// good one is accepted once.
func TestModemRefusals(t *testing.T) {
	g := newSMSRig(t)
	later := time.Now().Add(time.Hour)
	_, other, _ := ed25519.GenerateKey(nil)

	g.send(t, g.trigger(t, 10, "20590", later, other))
	g.send(t, g.trigger(t, 10, "20590", time.Now().Add(-time.Second), g.key))
	g.send(t, g.trigger(t, 10, "20591", later, g.key))
	g.send(t, "LOA1 not a trigger")
	g.send(t, "hello")
	st := g.r.SMS()
	want := map[string]int{SMSForged: 1, SMSExpired: 1, SMSArea: 1, SMSMalformed: 2}
	for k, v := range want {
		if st.Refused[k] != v {
			t.Errorf("refused %s: %d, want %d (%+v)", k, st.Refused[k], v, st)
		}
	}
	if st.Accepted != 0 || st.Highest != 0 {
		t.Fatalf("refused triggers changed the modem: %+v", st)
	}

	good := g.trigger(t, 10, "20590", later, g.key)
	g.send(t, good)
	if st := g.r.SMS(); st.Accepted != 1 || st.Highest != 10 {
		t.Fatalf("a good trigger: %+v", st)
	}
	g.send(t, good)                                    // the same text again
	g.send(t, g.trigger(t, 9, "*", later, g.key))      // an older one
	g.send(t, g.trigger(t, 11, "01", later, g.key))    // the province: accepted
	g.send(t, g.trigger(t, 11, "20590", later, g.key)) // the same seq for its commune: a replay
	st = g.r.SMS()
	if st.Refused[SMSReplayed] != 3 || st.Accepted != 2 || st.Highest != 11 {
		t.Fatalf("replays: %+v", st)
	}
}

// A receiver without the station key, or without the sms firmware,
// plays no trigger.
func TestModemWithoutKeyOrSMS(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	text, err := protocol.EncodeSMSTrigger(key, protocol.SMSTrigger{Code: 7, Area: "*", Repeats: 1, Priority: 240,
		Expires: time.Now().Add(time.Hour), Seq: 1, Session: "0000000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	nokey := NewReceiver(Config{ID: "rx-1"})
	nokey.ReceiveSMS("+1", text)
	if st := nokey.SMS(); st.Refused[SMSForged] != 1 || st.Accepted != 0 {
		t.Errorf("no station key: %+v", st)
	}
	off := NewReceiver(Config{ID: "rx-2", NoSMS: true, StationKey: key.Public().(ed25519.PublicKey)})
	off.ReceiveSMS("+1", text)
	if st := off.SMS(); st.Received != 0 || st.Accepted != 0 {
		t.Errorf("NoSMS: %+v", st)
	}
	if caps := off.status(true).Caps; len(caps) == 0 || slices.Contains(caps, protocol.CapSMS) {
		t.Errorf("NoSMS announces %v", caps)
	}
	if caps := nokey.status(true).Caps; !slices.Contains(caps, protocol.CapSMS) {
		t.Errorf("a v2 receiver announces %v, want sms", caps)
	}
}
