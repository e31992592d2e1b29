package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// storedReply is GET /api/v1/stored-messages.
type storedReply struct {
	Version  int64                `json:"version"`
	Messages []*loa.StoredMessage `json:"messages"`
}

// deviceCache is what the device JSON says of a receiver's cache.
type deviceCache struct {
	State struct {
		Telemetry *struct {
			Cache *loa.CacheStats `json:"cache"`
		} `json:"telemetry"`
	} `json:"state"`
}

// powerAt is the Goertzel power of pcm at hz, normalised by length.
func powerAt(pcm []int16, hz float64) float64 {
	w := 2 * math.Pi * hz / protocol.ClockRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x) + c*s1 - s2
		s2, s1 = s1, s
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / float64(max(len(pcm), 1))
}

// With the controller's media path blocked (every receiver drops every
// RTP packet: no stream ever arrives) and MQTT up, a stored-message alert
// plays on every target receiver from its own storage: the library is
// pre-delivered over HTTPS-like downloads (signed, hashed), each receiver
// reports the set it holds (device JSON), the alert goes out as
// play_stored, each receiver's own record holds the decoded PCM of the
// stored message, repeated, and the report completes, channel stored.
func TestSystemStoredAlertWithoutMediaPath(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2, impair: firmwaresim.Impairment{Loss: 1}})
	ctx := context.Background()
	const hz = 700
	bulletin := s.upload(media.Tone(hz, 48000, time.Second, 0.5), 48000)

	// Bad input is refused and changes nothing.
	for _, c := range []struct {
		path string
		body map[string]any
		code string
	}{
		{"/api/v1/stored-messages/0", map[string]any{"name": "x", "media_id": bulletin.ID, "area_id": "p"}, loa.EINVALID},
		{"/api/v1/stored-messages/012", map[string]any{"name": "x", "media_id": bulletin.ID, "area_id": "p"}, loa.EINVALID},
		{"/api/v1/stored-messages/12", map[string]any{"name": "x", "media_id": "nope", "area_id": "p"}, loa.ENOTFOUND},
		{"/api/v1/stored-messages/12", map[string]any{"name": "", "media_id": bulletin.ID, "area_id": "p"}, loa.EINVALID},
		{"/api/v1/stored-messages/12", map[string]any{"name": "x", "media_id": bulletin.ID}, loa.EINVALID},
	} {
		var ce *api.ClientError
		if err := s.api.JSON(ctx, "PUT", c.path, c.body, nil); !errors.As(err, &ce) || ce.Code != c.code {
			t.Errorf("PUT %s %v: %v, want %s", c.path, c.body, err, c.code)
		}
	}
	var lib storedReply
	if err := s.api.JSON(ctx, "GET", "/api/v1/stored-messages", nil, &lib); err != nil || len(lib.Messages) != 0 || lib.Version != 0 {
		t.Fatalf("library after bad input: %+v %v", lib, err)
	}

	var msg loa.StoredMessage
	if err := s.api.JSON(ctx, "PUT", "/api/v1/stored-messages/12",
		map[string]any{"name": "Lũ quét", "media_id": bulletin.ID, "category": "flood", "area_id": "p"}, &msg); err != nil {
		t.Fatalf("put stored message: %v", err)
	}
	if msg.Code != 12 || msg.SHA256 != bulletin.Hash || msg.Frames != bulletin.Frames {
		t.Fatalf("stored message %+v, media %+v", msg, bulletin)
	}
	if err := s.api.JSON(ctx, "GET", "/api/v1/stored-messages", nil, &lib); err != nil || len(lib.Messages) != 1 || lib.Version != 1 {
		t.Fatalf("library: %+v %v", lib, err)
	}
	// Every receiver holds it, and the controller shows so.
	for _, r := range s.fleet.Receivers() {
		loatest.Eventually(t, time.Minute, func() bool {
			h := r.CacheHolding()
			var dev deviceCache
			if s.api.JSON(ctx, "GET", "/api/v1/devices/"+r.ID(), nil, &dev) != nil || dev.State.Telemetry == nil {
				return false
			}
			c := dev.State.Telemetry.Cache
			return h.Holds("stored:12") && c != nil && c.Version == lib.Version && c.Missing == 0
		}, r.ID()+" holds stored message 12, as the controller shows")
	}

	al, err := s.sendAlert(map[string]any{"title": "Lũ quét", "level": loa.AlertEmergency, "stored_code": 12,
		"targets": map[string][]string{"areas": {"p"}}, "repeats": 2, "volume": 90, "expires_in": "10m"})
	if err != nil {
		t.Fatalf("send alert: %v", err)
	}
	if al.StoredCode != 12 || al.Content.MediaID != bulletin.ID || len(al.Report) != 2 {
		t.Fatalf("alert answered %+v", al)
	}
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished {
		t.Fatalf("alert ended %s (%s): %+v", end.State, end.Reason, end.Report)
	}
	want := 2 * bulletin.Frames * protocol.FrameSamples
	for _, r := range s.fleet.Receivers() {
		d := delivery(end, r.ID())
		if d.State != loa.DeliveryFinished || d.Channel != loa.ChannelStored || d.Repeats != 2 || d.StartedAt.IsZero() {
			t.Errorf("%s: report %+v, want finished, channel stored, 2 repeats", r.ID(), d)
		}
		st, ok := r.Session(al.SessionID)
		if !ok || st.Local != "stored:12" || st.EndReason != firmwaresim.EndPlayedOut {
			t.Errorf("%s: its record of %s: %+v", r.ID(), al.SessionID, st)
			continue
		}
		pcm := r.PCM(al.SessionID)
		if len(pcm) != want {
			t.Errorf("%s played %d samples, want %d (two repeats of the stored message)", r.ID(), len(pcm), want)
			continue
		}
		// Both repeats are the stored tone, decoded.
		for i, part := range [][]int16{pcm[want/8 : 3*want/8], pcm[5*want/8 : 7*want/8]} {
			if on, off := powerAt(part, hz), powerAt(part, 2*hz+130); on < 1000*off || on < 1e6 {
				t.Errorf("%s repeat %d: power %g at %d Hz, %g off it", r.ID(), i+1, on, hz, off)
			}
		}
		// The stream path is blocked: nothing came by RTP.
		for _, other := range r.Sessions() {
			if other.Local == "" && other.Received > 0 {
				t.Errorf("%s received RTP though the media path is blocked: %+v", r.ID(), other)
			}
		}
	}
}

// In a fleet where one receiver has no cache, a stored-message alert with
// content of its own plays from storage where the message is held and is
// streamed to the receiver without a cache; every one finishes, and the
// report says which way each got it.
func TestSystemStoredAlertMixedFleet(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-plain", AreaID: "a1", Name: "rx-plain"})
	if err != nil {
		t.Fatal(err)
	}
	plain := firmwaresim.NewReceiver(firmwaresim.Config{ID: "rx-plain", Password: pw, Broker: s.m.MQTTURL(), Decode: true, KeepPCM: true,
		NoCache: true, StationKey: s.m.StationKey.Public().(ed25519.PublicKey), Logger: testLogger(t)})
	if err := plain.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	if err := s.api.WaitOnline(ctx, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	stored := s.upload(media.Tone(700, 48000, time.Second, 0.5), 48000)
	if err := s.api.JSON(ctx, "PUT", "/api/v1/stored-messages/7", map[string]any{"name": "Bão", "media_id": stored.ID, "area_id": "p"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.fleet.Receivers() {
		loatest.Eventually(t, time.Minute, func() bool { return r.CacheHolding().Holds("stored:7") }, r.ID()+" holds stored message 7")
	}
	if h := plain.CacheHolding(); len(h.Held) != 0 {
		t.Fatalf("the receiver without a cache holds %v", h.Held)
	}
	// The controller learns the holdings from the acks: wait until a
	// receiver's telemetry shows it too, the later of the two.
	for _, r := range s.fleet.Receivers() {
		loatest.Eventually(t, time.Minute, func() bool {
			var dev deviceCache
			return s.api.JSON(ctx, "GET", "/api/v1/devices/"+r.ID(), nil, &dev) == nil && dev.State.Telemetry != nil &&
				dev.State.Telemetry.Cache != nil && dev.State.Telemetry.Cache.Version == 1
		}, r.ID()+"'s holding shown")
	}
	al, err := s.sendAlert(map[string]any{"title": "Bão", "level": loa.AlertEmergency, "stored_code": 7,
		"targets": map[string][]string{"areas": {"p"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatalf("send alert: %v", err)
	}
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished {
		t.Fatalf("alert ended %s: %+v", end.State, end.Report)
	}
	for _, d := range end.Report {
		want := loa.ChannelStored
		if d.Device == plain.ID() {
			want = ""
		}
		if d.State != loa.DeliveryFinished || d.Channel != want {
			t.Errorf("%s: %+v, want finished by channel %q", d.Device, d, want)
		}
	}
	for _, r := range append(s.fleet.Receivers(), plain) {
		var local, streamed int
		for _, st := range r.Sessions() {
			if st.Played > 0 && st.Local != "" {
				local++
			} else if st.Played > 0 {
				streamed++
			}
		}
		if r == plain && (local != 0 || streamed != 1) || r != plain && (local != 1 || streamed != 0) {
			t.Errorf("%s played %d times from storage and %d streamed", r.ID(), local, streamed)
		}
	}
}
