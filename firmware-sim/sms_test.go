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

// A trigger plays the stored message through the local player, with its
// events; the receiver replies by SMS only when its MQTT is down at the
// end of the play. A code it does not hold plays nothing.
func TestModemPlaysAndReplies(t *testing.T) {
	t.Parallel()
	b := loatest.StartBroker(t, "")
	pub, priv := newKey(t)
	f := &cacheFixture{broker: b.URL(), rec: newRecorder(t, b.URL(), "ctl"), srv: newImageServer(t), pub: pub, priv: priv}
	n := NewSMSNetwork()
	replies := make(chan string, 4)
	defer n.Attach("+84900000000", func(from, text string) { replies <- text })()
	r := f.receiver(t, Config{ID: "rx1", Decode: true, KeepPCM: true, SMS: n, MSISDN: "+84900000001", AreaCodes: []string{"20590"}})
	const frames = 20
	if a := f.apply(t, "rx1", 1, f.item(7, oggOpus(toneFrames(t, frames)))); a.State != protocol.AckDone {
		t.Fatalf("cache: %+v", a)
	}
	send := func(seq uint32, code int, session string) {
		t.Helper()
		text, err := protocol.EncodeSMSTrigger(priv, protocol.SMSTrigger{Code: code, Area: "20590", Repeats: 2, Volume: 90,
			Priority: 240, Expires: time.Now().Add(time.Hour), Seq: seq, Session: session})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Send(context.Background(), "+84900000000", "+84900000001", text); err != nil {
			t.Fatal(err)
		}
	}

	send(1, 7, "00000000000000a1")
	f.rec.event(t, "rx1", protocol.EventPlayed, "00000000000000a1")
	fin := f.rec.event(t, "rx1", protocol.EventFinished, "00000000000000a1")
	if fin.Stream == nil || fin.Stream.Played != 2*frames {
		t.Fatalf("finished %+v", fin.Stream)
	}
	loatest.Eventually(t, waitLimit, func() bool { return r.SMS().Played == 1 }, "the first trigger played")

	b.Stop()
	loatest.Eventually(t, waitLimit, func() bool { return !r.mqttClient().IsConnectionOpen() }, "the receiver's MQTT down")
	send(2, 7, "00000000000000a2")
	var text string
	select {
	case text = <-replies:
	case <-time.After(waitLimit):
		t.Fatalf("no SMS reply with MQTT down: %+v", r.SMS())
	}
	rep, err := protocol.VerifySMSReply(protocol.SMSReplyKeyFromPassword(otaPassword), text)
	if err != nil || rep.Device != "rx1" || rep.Seq != 2 || rep.Session != "00000000000000a2" || rep.Played != 2 || rep.Started.IsZero() {
		t.Fatalf("reply %+v, %v", rep, err)
	}
	if pcm := r.PCM("00000000000000a2"); len(pcm) != 2*frames*protocol.FrameSamples {
		t.Errorf("%d samples played, want %d", len(pcm), 2*frames*protocol.FrameSamples)
	}

	send(3, 8, "00000000000000a3") // not held
	send(3, 7, "00000000000000a4") // replayed
	loatest.Eventually(t, waitLimit, func() bool {
		st := r.SMS()
		return st.Refused[SMSNotCached] == 1 && st.Refused[SMSReplayed] == 1
	}, "a code not held and a replay refused")
	if st := r.SMS(); st.Played != 2 || st.Replies != 1 || st.Accepted != 3 {
		t.Errorf("modem %+v: want 2 played, 1 reply, 3 accepted", st)
	}
	if _, ok := r.Session("00000000000000a3"); ok {
		t.Error("a code not held played")
	}
	select {
	case text := <-replies:
		t.Errorf("a second reply: %s", text)
	default:
	}
}

// The highest sequence number accepted survives a restart of the
// receiver when it keeps its state (Config.CacheDir): the same trigger
// after a power cut is a replay.
func TestModemKeepsHighestSeq(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	text, err := protocol.EncodeSMSTrigger(key, protocol.SMSTrigger{Code: 7, Area: "*", Repeats: 1, Priority: 240,
		Expires: time.Now().Add(time.Hour), Seq: 5, Session: "0000000000000005"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: "rx-1", StationKey: key.Public().(ed25519.PublicKey), CacheDir: dir}
	r := NewReceiver(cfg)
	r.startModem()
	r.ReceiveSMS("+1", text)
	r.modem.plays.Wait()
	if st := r.SMS(); st.Accepted != 1 || st.Highest != 5 {
		t.Fatalf("first boot: %+v", st)
	}
	again := NewReceiver(cfg)
	again.startModem()
	again.ReceiveSMS("+1", text)
	if st := again.SMS(); st.Accepted != 0 || st.Refused[SMSReplayed] != 1 || st.Highest != 5 {
		t.Fatalf("after a restart: %+v, want the trigger refused as replayed", st)
	}
}
