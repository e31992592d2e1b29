package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// alertReply is GET /api/v1/alerts/{id}.
type alertReply struct {
	loa.Alert
	Totals struct {
		All   loa.AlertTotals            `json:"all"`
		Areas map[string]loa.AlertTotals `json:"areas"`
	} `json:"totals"`
}

func (s *system) sendAlert(body map[string]any) (*alertReply, error) {
	var a alertReply
	return &a, s.api.JSON(context.Background(), "POST", "/api/v1/alerts", body, &a)
}

func (s *system) getAlert(id string) *alertReply {
	s.t.Helper()
	var a alertReply
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/alerts/"+id, nil, &a); err != nil {
		s.t.Fatalf("get alert %s: %v", id, err)
	}
	return &a
}

// waitAlert polls the alert until cond holds; the guard only stops a hang.
func (s *system) waitAlert(id, what string, cond func(*alertReply) bool) *alertReply {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a := s.getAlert(id)
		if cond(a) {
			return a
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("alert %s: never %s: %+v", id, what, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func delivery(a *alertReply, device string) loa.Delivery {
	for _, d := range a.Report {
		if d.Device == device {
			return d
		}
	}
	return loa.Delivery{}
}

// waitAlertPlaying waits until every receiver plays session id.
func waitAlertPlaying(t *testing.T, id string, rs ...*firmwaresim.Receiver) {
	t.Helper()
	for _, r := range rs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if st, ok := r.Session(id); ok && st.Played > 5 && !st.Done {
				break
			}
			if time.Now().After(deadline) {
				st, _ := r.Session(id)
				t.Fatalf("%s never played %s: %+v", r.ID(), id, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// parts returns the receiver's stats of every part of session id.
func parts(r *firmwaresim.Receiver, id string) []firmwaresim.SessionStats {
	var out []firmwaresim.SessionStats
	for _, st := range r.Sessions() {
		if st.Session == id {
			out = append(out, st)
		}
	}
	return out
}

// An emergency alert to one commune takes its receivers from the
// programme they play, plays every repeat at the alert volume through
// mute, gives the receivers their volume back and returns them to the
// programme; the other commune never hears it. The report says finished.
func TestSystemAlertPreemptsProgramme(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	ctx := context.Background()
	a, b := s.byArea["a"], s.byArea["b"]
	muted := a[0]
	var res map[string]any
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/"+muted.ID()+"/commands",
		map[string]any{"op": "mute", "args": map[string]bool{"muted": true}}, &res); err != nil {
		t.Fatalf("mute: %v", err)
	}
	if !muted.Muted() {
		t.Fatal("receiver not muted")
	}

	programme := s.upload(testSignal(9*time.Second), 48000)
	bulletin := s.upload(media.Tone(700, 48000, 1500*time.Millisecond, 0.5), 48000)
	prog := s.play(programme.ID, "p")
	waitAlertPlaying(t, prog.ID, s.fleet.Receivers()...)

	al, err := s.sendAlert(map[string]any{"title": "Lũ quét", "level": loa.AlertEmergency,
		"content": map[string]any{"media_id": bulletin.ID}, "targets": map[string][]string{"areas": {"a"}},
		"repeats": 2, "gap": "500ms", "volume": 90, "expires_in": "10m"})
	if err != nil {
		t.Fatalf("send alert: %v", err)
	}
	if al.State != loa.AlertActive || al.SessionID == "" || len(al.Report) != len(a) || al.Totals.All.Receivers != len(a) {
		t.Fatalf("alert answered %+v", al)
	}
	waitAlertPlaying(t, al.SessionID, a...)
	for _, r := range a {
		if v := r.Volume(); v != 90 {
			t.Errorf("%s plays the alert at volume %d, want 90", r.ID(), v)
		}
	}

	end := s.waitAlert(al.ID, "finished", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished {
		t.Fatalf("alert ended %s (%s): %+v", end.State, end.Reason, end.Report)
	}
	wantFrames := 2*bulletin.Frames + 25 // two repeats and the gap
	for _, r := range a {
		d := delivery(end, r.ID())
		if d.State != loa.DeliveryFinished || d.Repeats != 2 || d.AckedAt.IsZero() || d.StartedAt.IsZero() || d.Late {
			t.Errorf("%s: report %+v, want finished with 2 repeats", r.ID(), d)
		}
		st, _ := r.Session(al.SessionID)
		if st.Played+5 < uint64(wantFrames) || st.Muted != 0 {
			t.Errorf("%s played %d of %d alert frames (%d muted): %+v", r.ID(), st.Played, wantFrames, st.Muted, st)
		}
	}
	if tot := end.Totals.Areas["a"]; tot.Finished != len(a) || tot.Receivers != len(a) {
		t.Errorf("totals of commune a: %+v", tot)
	}
	if tot := end.Totals.Areas["p"]; tot.Finished != len(a) {
		t.Errorf("totals of the province: %+v", tot)
	}
	if _, ok := end.Totals.Areas["b"]; ok {
		t.Errorf("commune b has totals but was not a target: %+v", end.Totals.Areas)
	}

	// The programme comes back on a, after the alert; b was never interrupted.
	s.finish(prog, programme.Duration, "a", "b")
	for _, r := range a {
		if v := r.Volume(); v != firmwaresim.DefaultVolume {
			t.Errorf("%s: volume %d after the alert, want its own %d back", r.ID(), v, firmwaresim.DefaultVolume)
		}
		ps := parts(r, prog.ID)
		alertSt, _ := r.Session(al.SessionID)
		if len(ps) < 2 || ps[len(ps)-1].Played == 0 || ps[len(ps)-1].FirstPlayed.Before(alertSt.Ended) {
			t.Errorf("%s: the programme did not resume after the alert: %+v", r.ID(), ps)
		}
	}
	if !muted.Muted() {
		t.Error("the alert unmuted the receiver for good")
	}
	for _, r := range b {
		if _, ok := r.Session(al.SessionID); ok {
			t.Errorf("%s in commune b got the alert", r.ID())
		}
		if ps := parts(r, prog.ID); len(ps) != 1 || float64(ps[0].FromPacket()) < 0.99*float64(programme.Frames) {
			t.Errorf("%s in commune b was interrupted: %+v", r.ID(), ps)
		}
	}
}

// Cancelling an alert stops it on every receiver within a second and the
// report says cancelled.
func TestSystemAlertCancel(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	long := s.upload(media.Tone(500, 48000, 15*time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertPriority, "content": map[string]any{"media_id": long.ID},
		"targets": map[string][]string{"areas": {"p"}}, "expires_in": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	rs := s.fleet.Receivers()
	waitAlertPlaying(t, al.SessionID, rs...)
	s.waitAlert(al.ID, "started everywhere", func(a *alertReply) bool { return a.Totals.All.Started == len(rs) })

	at := time.Now()
	var end alertReply
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/alerts/"+al.ID+"/cancel", map[string]string{"reason": "báo nhầm"}, &end); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if end.State != loa.AlertCancelled || end.Reason != "báo nhầm" || end.Totals.All.Failed != len(rs) {
		t.Errorf("cancel answered %s (%s), totals %+v", end.State, end.Reason, end.Totals.All)
	}
	for _, r := range rs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if st, _ := r.Session(al.SessionID); st.Done {
				if late := st.Ended.Sub(at); late > time.Second {
					t.Errorf("%s stopped %v after the cancel, want within 1 s", r.ID(), late)
				}
				if st.Played >= uint64(long.Frames) {
					t.Errorf("%s played the whole alert despite the cancel", r.ID())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never stopped", r.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	final := s.waitAlert(al.ID, "stored as cancelled", func(a *alertReply) bool { return a.State == loa.AlertCancelled })
	for _, d := range final.Report {
		if d.State != loa.DeliveryFailed || d.Reason != loa.ReasonCancelled {
			t.Errorf("%s: %+v, want failed/cancelled", d.Device, d)
		}
	}
	sess, err := s.api.Session(context.Background(), al.SessionID)
	if err != nil || sess.State != loa.SessionStopped {
		t.Errorf("alert session %+v, %v; want stopped", sess, err)
	}
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/alerts/"+al.ID+"/cancel", nil, nil); err == nil {
		t.Error("cancelling a cancelled alert succeeded")
	}
	audit := s.auditActions()
	for _, want := range []string{"alert.send " + al.ID, "alert.cancel " + al.ID} {
		if !audit[want] {
			t.Errorf("audit log lacks %q", want)
		}
	}
}

func (s *system) auditActions() map[string]bool {
	s.t.Helper()
	var recs []loa.AuditRecord
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/audit?limit=1000", nil, &recs); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range recs {
		out[r.Action+" "+r.Object] = true
	}
	return out
}

// A receiver that is off when the alert is sent is reported queued and
// offline; when it comes back it gets the whole alert, reported late.
func TestSystemAlertReceiverBackOnline(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-late", AreaID: "a1", Name: "late"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := firmwaresim.Config{ID: "rx-late", Password: pw, Broker: s.m.MQTTURL(), Logger: testLogger(t)}
	first := firmwaresim.NewReceiver(cfg)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.api.WaitOnline(ctx, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	first.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, ok := s.m.Fleet.DeviceState("rx-late"); ok && !st.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed receiver never went offline")
		}
		time.Sleep(20 * time.Millisecond)
	}

	bulletin := s.upload(media.Tone(600, 48000, time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertEmergency, "content": map[string]any{"media_id": bulletin.ID, "tone": true},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if d := delivery(al, "rx-late"); d.State != loa.DeliveryQueued || d.Reason != loa.ReasonOffline {
		t.Fatalf("offline receiver reported %+v, want queued (offline)", d)
	}
	online := s.byArea["a"][0]
	mid := s.waitAlert(al.ID, "finished on the online receiver", func(a *alertReply) bool {
		return delivery(a, online.ID()).State == loa.DeliveryFinished
	})
	if mid.State != loa.AlertActive {
		t.Fatalf("alert ended %s while a receiver waits to come back", mid.State)
	}
	if d := delivery(mid, "rx-late"); d.State != loa.DeliveryQueued || d.Reason != loa.ReasonOffline {
		t.Fatalf("offline receiver reported %+v, want still queued (offline)", d)
	}

	back := firmwaresim.NewReceiver(cfg)
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	d := delivery(end, "rx-late")
	if end.State != loa.AlertFinished || d.State != loa.DeliveryFinished || !d.Late || d.Repeats != 1 {
		t.Fatalf("alert %s, late receiver %+v; want finished, late", end.State, d)
	}
	if end.Totals.All.Late != 1 || end.Totals.All.Finished != 2 {
		t.Errorf("totals %+v", end.Totals.All)
	}
	var late *firmwaresim.SessionStats
	for _, st := range back.Sessions() {
		if st.Session != al.SessionID && st.Played > 0 {
			late = &st
		}
	}
	if late == nil || float64(late.Played) < 0.98*float64(bulletin.Frames) {
		t.Errorf("the receiver back online did not play the whole alert: %+v", back.Sessions())
	}
}

// A receiver that never answers its play command is reported failed,
// no_ack; the others play.
func TestSystemAlertNoAck(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-mute", AreaID: "a1", Name: "deaf"})
	if err != nil {
		t.Fatal(err)
	}
	deaf := deafReceiver(t, s.m.MQTTURL(), "rx-mute", pw)
	if err := s.api.WaitOnline(ctx, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	bulletin := s.upload(media.Tone(600, 48000, time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertEmergency, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if d := delivery(end, "rx-mute"); d.State != loa.DeliveryFailed || d.Reason != loa.ReasonNoAck {
		t.Errorf("silent receiver reported %+v, want failed no_ack", d)
	}
	if d := delivery(end, s.byArea["a"][0].ID()); d.State != loa.DeliveryFinished {
		t.Errorf("healthy receiver reported %+v, want finished", d)
	}
	if deaf.plays() == 0 {
		t.Error("the silent receiver was never sent a play command")
	}
}

// deaf is a device that is online and takes its commands but never answers.
type deaf struct {
	mu  chan struct{}
	cmd int
}

func (d *deaf) plays() int {
	<-d.mu
	defer func() { d.mu <- struct{}{} }()
	return d.cmd
}

func deafReceiver(t *testing.T, broker, id, password string) *deaf {
	t.Helper()
	d := &deaf{mu: make(chan struct{}, 1)}
	d.mu <- struct{}{}
	will, _ := json.Marshal(protocol.Status{Online: false, Boot: 1})
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(id).SetPassword(password).
		SetWill(protocol.DeviceTopic(id, protocol.KindStatus), string(will), 1, true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("deaf receiver connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Subscribe(protocol.DeviceTopic(id, protocol.KindCmd), 1, func(_ mqtt.Client, m mqtt.Message) {
		if cmd, err := protocol.DecodeCommand(m.Payload()); err == nil && cmd.Op == protocol.OpPlay {
			<-d.mu
			d.cmd++
			d.mu <- struct{}{}
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("deaf receiver subscribe: %v", tok.Error())
	}
	online, _ := json.Marshal(protocol.Status{Online: true, Boot: 1, TS: time.Now().UnixMilli()})
	if tok := c.Publish(protocol.DeviceTopic(id, protocol.KindStatus), 1, true, online); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("deaf receiver status: %v", tok.Error())
	}
	return d
}

// Bad alert requests are a clear 4xx naming the problem, and nothing is
// sent: no alert stored, no session started.
func TestSystemAlertBadInput(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	ctx := context.Background()
	if err := s.api.CreateArea(ctx, loa.Area{ID: "empty", ParentID: "p", Name: "Xã trống", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
	bulletin := s.upload(media.Tone(600, 48000, time.Second, 0.5), 48000)
	var op struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "cán bộ xã a", "role": loa.RoleOperator, "area_id": "a"}, &op); err != nil {
		t.Fatal(err)
	}
	operator := api.NewClient(s.m.URL(), op.Secret)
	good := func() map[string]any {
		return map[string]any{"level": loa.AlertEmergency, "content": map[string]any{"media_id": bulletin.ID},
			"targets": map[string][]string{"areas": {"a"}}, "expires_in": "1h"}
	}
	with := func(k string, v any) map[string]any { b := good(); b[k] = v; return b }
	cases := []struct {
		name   string
		client *api.Client
		body   map[string]any
		status int
		field  string
	}{
		{"no targets", nil, with("targets", map[string][]string{}), 400, "targets"},
		{"targets nobody", nil, with("targets", map[string][]string{"areas": {"empty"}}), 400, "targets"},
		{"unknown area", nil, with("targets", map[string][]string{"areas": {"nowhere"}}), 404, "targets.areas"},
		{"expired", nil, with("expires_at", time.Now().Add(-time.Minute).Format(time.RFC3339)), 400, "expires_at"},
		{"expired on arrival", nil, with("expires_in", "-5m"), 400, "expires_in"},
		{"too far", nil, with("expires_in", "48h"), 400, "expires_at"},
		{"text too long", nil, with("content", map[string]string{"text": strings.Repeat("Bão số 9 đổ bộ. ", 130)}), 400, "content.text"},
		{"unknown media", nil, with("content", map[string]string{"media_id": "nope"}), 404, "content.media_id"},
		{"no content", nil, with("content", map[string]string{}), 400, "content"},
		{"bad level", nil, with("level", "urgent"), 400, "level"},
		{"repeats", nil, with("repeats", 11), 400, "repeats"},
		{"gap", nil, with("gap", "2m"), 400, "gap"},
		{"volume", nil, with("volume", 150), 400, "volume"},
		{"unknown field", nil, with("sound", "loud"), 400, "sound"},
		{"test alert, no test areas", nil, with("test", true), 400, "targets"},
		{"operator sends khẩn cấp", operator, good(), 403, "level"},
		{"operator outside scope", operator, func() map[string]any {
			b := with("level", loa.AlertPriority)
			b["targets"] = map[string][]string{"areas": {"b"}}
			return b
		}(), 403, "targets.areas"},
	}
	for _, c := range cases {
		cl := c.client
		if cl == nil {
			cl = s.api
		}
		err := cl.JSON(ctx, "POST", "/api/v1/alerts", c.body, nil)
		var ae *api.ClientError
		if !asAPIError(err, &ae) || ae.Status != c.status || !strings.Contains(ae.Message, c.field) {
			t.Errorf("%s: got %v, want %d naming %q", c.name, err, c.status, c.field)
		}
	}
	var list []alertReply
	if err := s.api.JSON(ctx, "GET", "/api/v1/alerts", nil, &list); err != nil || len(list) != 0 {
		t.Errorf("bad requests stored alerts: %v %v", list, err)
	}
	sessions, err := s.m.Sessions.Sessions(ctx)
	if err != nil || len(sessions) != 0 {
		t.Errorf("bad requests started sessions: %v %v", sessions, err)
	}
	for _, r := range s.fleet.Receivers() {
		if n := len(r.Sessions()); n != 0 {
			t.Errorf("%s was sent %d sessions", r.ID(), n)
		}
	}

	// The operator may send ưu tiên within its commune; a test alert
	// sounds once its area is marked for tests.
	if _, err := (&system{t: t, api: operator}).sendAlert(with("level", loa.AlertPriority)); err != nil {
		t.Errorf("operator's ưu tiên alert to its commune: %v", err)
	}
	if err := s.api.JSON(ctx, "PUT", "/api/v1/areas/b/tests", map[string]bool{"tests": true}, nil); err != nil {
		t.Fatal(err)
	}
	test := with("test", true)
	test["targets"] = map[string][]string{"areas": {"p"}}
	al, err := s.sendAlert(test)
	if err != nil {
		t.Fatalf("test alert: %v", err)
	}
	for _, d := range al.Report {
		if d.Area != "b1" {
			t.Errorf("test alert reached %s in %s, outside the areas marked for tests", d.Device, d.Area)
		}
	}
	if len(al.Report) != len(s.byArea["b"]) {
		t.Errorf("test alert reached %d receivers, want the %d in b", len(al.Report), len(s.byArea["b"]))
	}
}

// The live report streams as server-sent events until the alert ends.
func TestSystemAlertEvents(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	bulletin := s.upload(media.Tone(600, 48000, time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertPriority, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"p"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	var stream string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.api.Do(ctx, "GET", "/api/v1/alerts/"+al.ID+"/events", "", nil, &stream); err != nil {
		t.Fatal(err)
	}
	var reports []alertReply
	for _, block := range strings.Split(stream, "\n\n") {
		if !strings.Contains(block, "event: report\n") {
			continue
		}
		_, data, _ := strings.Cut(block, "data: ")
		var r alertReply
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		reports = append(reports, r)
	}
	if len(reports) < 2 {
		t.Fatalf("%d report events, want the first and the final one at least:\n%s", len(reports), stream)
	}
	last := reports[len(reports)-1]
	if last.State != loa.AlertFinished || last.Totals.All.Finished != 2 {
		t.Errorf("last event: %s, totals %+v", last.State, last.Totals.All)
	}
	if reports[0].Totals.All.Finished == 2 {
		t.Error("the first event already had the final report")
	}

	// The browser's EventSource sends no header: ?access_token= instead.
	// An ended alert's stream is its final report, then the end.
	var again string
	if err := api.NewClient(s.m.URL(), "").Do(ctx, "GET", "/api/v1/alerts/"+al.ID+"/events?access_token="+s.api.Token, "", nil, &again); err != nil {
		t.Fatalf("events with ?access_token=: %v", err)
	}
	if n := strings.Count(again, "event: report\n"); n != 1 || !strings.Contains(again, `"state":"finished"`) {
		t.Errorf("stream of an ended alert: %d reports:\n%s", n, again)
	}
	if err := api.NewClient(s.m.URL(), "").Do(ctx, "GET", "/api/v1/alerts/"+al.ID+"/events?access_token=nope", "", nil, &again); err == nil {
		t.Error("a bad access_token was accepted")
	}
}

// A text alert is spoken by espeak-ng after the attention tone and
// reaches the receivers.
func TestSystemAlertSpeech(t *testing.T) {
	loatest.Tool(t, "espeak-ng")
	s := startSystem(t, systemOpts{receivers: 2})
	al, err := s.sendAlert(map[string]any{"level": loa.AlertEmergency, "title": "Lũ quét",
		"content": map[string]any{"text": "Cảnh báo lũ quét. Bà con di chuyển lên vùng cao.", "tone": true},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished || end.Totals.All.Finished != 1 {
		t.Fatalf("speech alert ended %s: %+v", end.State, end.Report)
	}
	r := s.byArea["a"][0]
	st, _ := r.Session(al.SessionID)
	pcm := r.PCM(al.SessionID)
	// A chime (~1.6 s) and a few seconds of speech.
	if secs := float64(len(pcm)) / 48000; secs < 3 || secs > 30 {
		t.Fatalf("the receiver played %.1f s of a spoken alert: %+v", secs, st)
	}
	var loud int
	for i := 0; i+960 <= len(pcm); i += 960 {
		var sum float64
		for _, v := range pcm[i : i+960] {
			sum += float64(v) * float64(v)
		}
		if math.Sqrt(sum/960) > 500 {
			loud++
		}
	}
	if frac := float64(loud) / float64(len(pcm)/960); frac < 0.3 {
		t.Errorf("only %.0f%% of the spoken alert has sound", 100*frac)
	}
}

// At its expiry an alert stops waiting for receivers that never came
// back: they are failed as offline, and the alert is expired.
func TestSystemAlertExpires(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	if _, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-never", AreaID: "a1"}); err != nil {
		t.Fatal(err)
	}
	bulletin := s.upload(media.Tone(600, 48000, time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertPriority, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "6s"})
	if err != nil {
		t.Fatal(err)
	}
	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertExpired {
		t.Errorf("alert %s, want expired", end.State)
	}
	if d := delivery(end, "rx-never"); d.State != loa.DeliveryFailed || d.Reason != loa.ReasonOffline {
		t.Errorf("never-online receiver: %+v, want failed offline", d)
	}
	if d := delivery(end, s.byArea["a"][0].ID()); d.State != loa.DeliveryFinished {
		t.Errorf("online receiver: %+v, want finished before the expiry", d)
	}
}

// An alert playing when the controller stops goes on when it comes back
// (it has not expired): its first session is not resumed from its
// middle, every receiver gets the whole alert in a late session, then
// its own volume back and the programme the alert preempted.
func TestSystemAlertRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MQTTListen = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	m1 := openMain(t, cfg)
	c := api.NewClient(m1.URL(), m1.AdminToken)
	fleet := provisionFleet(t, c, m1.MQTTURL(), 2, false)
	s1 := &system{t: t, m: m1, api: c}
	bulletin := s1.upload(media.Tone(500, 48000, 2*time.Second, 0.5), 48000)
	programme := s1.upload(testSignal(20*time.Second), 48000)
	prog := s1.play(programme.ID, "a")
	waitAlertPlaying(t, prog.ID, fleet.Receivers()...)
	al, err := s1.sendAlert(map[string]any{"level": loa.AlertEmergency, "volume": 95, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	waitAlertPlaying(t, al.SessionID, fleet.Receivers()...)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openMain(t, cfg)
	defer m2.Close()
	s2 := &system{t: t, m: m2, api: api.NewClient(m2.URL(), c.Token)}
	end := s2.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished || end.Totals.All.Finished != 2 || end.Totals.All.Late != 2 {
		t.Errorf("after a restart the alert is %s (%s), totals %+v; want finished by both, late", end.State, end.Reason, end.Totals.All)
	}
	sess, err := s2.api.Session(ctx, al.SessionID)
	if err != nil || sess.State != loa.SessionStopped {
		t.Errorf("alert session after restart: %+v, %v; want stopped, not resumed", sess, err)
	}
	sessions := alertSessions(t, s2.api, al.ID)
	for _, r := range fleet.Receivers() {
		if !playedWhole(r, sessions, al.SessionID, bulletin.Frames) {
			t.Errorf("%s did not play the whole alert after the restart: %+v", r.ID(), r.Sessions())
		}
		loatest.Eventually(t, 10*time.Second, func() bool { return r.Volume() == firmwaresim.DefaultVolume },
			r.ID()+" gets its own volume back")
		var alertEnd time.Time
		for _, st := range r.Sessions() {
			if sessions[st.Session] && st.Ended.After(alertEnd) {
				alertEnd = st.Ended
			}
		}
		loatest.Eventually(t, 10*time.Second, func() bool {
			for _, st := range parts(r, prog.ID) {
				if st.FirstPlayed.After(alertEnd) && st.Played > 25 {
					return true
				}
			}
			return false
		}, r.ID()+" plays the preempted programme again after the alert")
	}
}
