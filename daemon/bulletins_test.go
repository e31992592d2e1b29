package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// bulletinStation is one controller of the bulletin test with its
// simulated receivers.
type bulletinStation struct {
	m   *Main
	api *api.Client
}

// openBulletinStation opens a controller with areas (the first the
// province), devices (id → area) played by simulated receivers.
func openBulletinStation(t *testing.T, areas []loa.Area, devices map[string]string, configure func(*Config)) *bulletinStation {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.BulletinCheckEvery = 100 * time.Millisecond
	if configure != nil {
		configure(&cfg)
	}
	m := openMain(t, cfg)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	s := &bulletinStation{m: m, api: api.NewClient(m.URL(), m.AdminToken)}
	for _, a := range areas {
		if err := s.api.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var cfgs []firmwaresim.Config
	for id, area := range devices {
		pw, err := s.api.CreateDevice(ctx, loa.Device{ID: id, AreaID: area, Name: id})
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: m.MQTTURL(), Logger: testLogger(t).With("receiver", id)})
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := s.api.WaitOnline(ctx, len(cfgs), time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

// token makes a token of role in area and returns a client with it.
func (s *bulletinStation) token(t *testing.T, role, area string) (*api.Client, string) {
	t.Helper()
	var out struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/tokens", map[string]any{"name": role + " " + area, "role": role, "area_id": area}, &out); err != nil {
		t.Fatal(err)
	}
	return api.NewClient(s.m.URL(), out.Secret), out.Secret
}

func (s *bulletinStation) tracking(t *testing.T, c *api.Client, id string) map[string]loa.BulletinCommune {
	t.Helper()
	var out struct {
		Communes []loa.BulletinCommune `json:"communes"`
	}
	if err := c.JSON(context.Background(), "GET", "/api/v1/bulletins/"+id+"/tracking", nil, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]loa.BulletinCommune{}
	for _, e := range out.Communes {
		m[e.AreaID] = e
	}
	return m
}

// TestBulletins: a province publishes an ưu tiên bulletin to three
// communes of its own controller and one served by another controller
// through the signed feed. x1 schedules it and it airs on its receivers
// (their delivery lines), x2 declines, x3 misses the deadline and the
// alarm names it (and only it); the remote commune's operator plays it
// and its airing comes back to the province. The tracking and its CSV
// say exactly that.
func TestBulletins(t *testing.T) {
	ctx := context.Background()
	prov := openBulletinStation(t, []loa.Area{
		{ID: "qn", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince},
		{ID: "x1", ParentID: "qn", Name: "Xã Một", Kind: loa.AreaCommune},
		{ID: "x2", ParentID: "qn", Name: "Xã Hai", Kind: loa.AreaCommune},
		{ID: "x3", ParentID: "qn", Name: "Xã Ba Tơ", Kind: loa.AreaCommune},
		{ID: "xr", ParentID: "qn", Name: "Xã Xa", Kind: loa.AreaCommune}, // served by the other controller
	}, map[string]string{"x1-a": "x1", "x1-b": "x1"}, nil)
	_, feedSecret := prov.token(t, loa.RoleFeed, "xr")
	commune := openBulletinStation(t, []loa.Area{
		{ID: "tp", Name: "Tỉnh", Kind: loa.AreaProvince}, {ID: "cm", ParentID: "tp", Name: "Xã Xa", Kind: loa.AreaCommune}},
		map[string]string{"cm-a": "cm"}, func(cfg *Config) {
			cfg.FeedSubscriptions = []station.FeedSubscription{{URL: prov.m.URL(), Token: feedSecret,
				PublicKey: prov.m.StationKey.Public().(ed25519.PublicKey), AreaID: "cm", Every: 200 * time.Millisecond}}
		})

	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, testSignal(2*time.Second), 48000, 1); err != nil {
		t.Fatal(err)
	}
	med, err := prov.api.UploadMedia(ctx, "ban-tin.wav", wav.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	province, _ := prov.token(t, loa.RoleProvince, "qn")
	now := time.Now()
	var b loa.Bulletin
	if err := province.JSON(ctx, "POST", "/api/v1/bulletins", map[string]any{
		"title": "Phòng chống bão số 3", "category": "thiên tai", "level": "priority", "media_id": med.ID,
		"valid_until": now.Add(time.Hour), "must_air_by": now.Add(5 * time.Second), "areas": []string{"x1", "x2", "x3", "xr"},
	}, &b); err != nil {
		t.Fatal(err)
	}

	// Bad input and roles: refused, nothing published.
	op1, _ := prov.token(t, loa.RoleOperator, "x1")
	feedClient := api.NewClient(prov.m.URL(), feedSecret)
	for _, tc := range []struct {
		c      *api.Client
		body   map[string]any
		status int
	}{
		{op1, map[string]any{"title": "x", "level": "normal", "media_id": med.ID, "valid_until": now.Add(time.Hour), "areas": []string{"x1"}}, 403},
		{feedClient, map[string]any{"title": "x", "level": "normal", "media_id": med.ID, "valid_until": now.Add(time.Hour), "areas": []string{"xr"}}, 403},
		{province, map[string]any{"title": "x", "level": "urgent", "media_id": med.ID, "valid_until": now.Add(time.Hour), "areas": []string{"x1"}}, 400},
		{province, map[string]any{"title": "x", "level": "priority", "media_id": med.ID, "valid_until": now.Add(time.Hour), "areas": []string{"x1"}}, 400},
		{province, map[string]any{"title": "x", "level": "normal", "media_id": "nope", "valid_until": now.Add(time.Hour), "areas": []string{"x1"}}, 404},
	} {
		if err := tc.c.JSON(ctx, "POST", "/api/v1/bulletins", tc.body, nil); !isStatus(err, tc.status) {
			t.Errorf("publish %v: %v, want %d", tc.body, err, tc.status)
		}
	}
	if err := feedClient.JSON(ctx, "GET", "/api/v1/devices", nil, nil); !isStatus(err, 403) {
		t.Errorf("the feed token reads devices: %v", err)
	}
	var all []loa.Bulletin
	if err := prov.api.JSON(ctx, "GET", "/api/v1/bulletins", nil, &all); err != nil || len(all) != 1 {
		t.Errorf("bulletins after the refused ones: %d, %v", len(all), err)
	}

	// An operator of x1 finds it in the inbox and schedules it; x2 declines.
	var inbox []loa.Bulletin
	if err := op1.JSON(ctx, "GET", "/api/v1/bulletins/inbox", nil, &inbox); err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 1 || inbox[0].ID != b.ID || len(inbox[0].Communes) != 1 || inbox[0].Communes[0].AreaID != "x1" {
		t.Fatalf("x1's inbox %+v, want the bulletin with x1's entry only", inbox)
	}
	at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	if err := op1.JSON(ctx, "POST", "/api/v1/bulletins/"+b.ID+"/accept", map[string]any{"area_id": "x1", "how": "schedule", "at": at}, nil); err != nil {
		t.Fatal(err)
	}
	// Outside its scope, an operator may not decide for another commune.
	if err := op1.JSON(ctx, "POST", "/api/v1/bulletins/"+b.ID+"/decline", map[string]any{"area_id": "x2", "reason": "không"}, nil); !isStatus(err, 403) {
		t.Errorf("x1's operator declining for x2: %v, want 403", err)
	}
	op2, _ := prov.token(t, loa.RoleOperator, "x2")
	if err := op2.JSON(ctx, "POST", "/api/v1/bulletins/"+b.ID+"/decline", map[string]any{"area_id": "x2", "reason": "Trùng lịch tiếp dân"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := op2.JSON(ctx, "POST", "/api/v1/bulletins/"+b.ID+"/accept", map[string]any{"area_id": "x2", "how": "play_now"}, nil); !isStatus(err, 409) {
		t.Errorf("accepting a declined bulletin: %v, want 409", err)
	}

	// The other controller imports it from the feed into cm's inbox; its
	// operator plays it now.
	cmOp, _ := commune.token(t, loa.RoleOperator, "cm")
	var remote []loa.Bulletin
	loatest.Eventually(t, 20*time.Second, func() bool {
		remote = nil
		if err := cmOp.JSON(ctx, "GET", "/api/v1/bulletins/inbox", nil, &remote); err != nil {
			t.Fatal(err)
		}
		return len(remote) == 1
	}, "the feed brings the bulletin to the commune's inbox")
	if r := remote[0]; r.Title != b.Title || r.Level != loa.BulletinPriority || r.Source != prov.m.URL() || r.SourceID != b.ID {
		t.Errorf("imported bulletin %+v", r)
	}
	if err := cmOp.JSON(ctx, "POST", "/api/v1/bulletins/"+remote[0].ID+"/accept", map[string]any{"area_id": "cm", "how": "play_now"}, nil); err != nil {
		t.Fatal(err)
	}

	// x1 airs at its time, on both receivers; cm's airing comes back.
	loatest.Eventually(t, 30*time.Second, func() bool {
		tr := prov.tracking(t, province, b.ID)
		return tr["x1"].State == loa.BulletinAired && tr["x1"].Receivers == 2 &&
			tr["xr"].State == loa.BulletinAired && tr["xr"].Receivers == 1
	}, "x1 and the remote commune air it, by their receivers' evidence")

	// x3 missed the deadline: the alarm names it, and no other commune.
	var alarm loa.Alarm
	loatest.Eventually(t, 20*time.Second, func() bool {
		var list []loa.Alarm
		if err := prov.api.JSON(ctx, "GET", "/api/v1/alarms?active=true&kind="+loa.AlarmBulletinDeadline, nil, &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			return false
		}
		alarm = list[0]
		return strings.Contains(alarm.Msg, "Xã Ba Tơ (x3)") && !strings.Contains(alarm.Msg, "(xr)")
	}, "the deadline alarm names x3")
	for _, other := range []string{"(x1)", "(x2)", "(xr)"} {
		if strings.Contains(alarm.Msg, other) {
			t.Errorf("the alarm %q names %s", alarm.Msg, other)
		}
	}
	if alarm.Area != "x3" {
		t.Errorf("the deadline alarm is in area %q, want x3 (those scoped above it see it and are told)", alarm.Area)
	}

	tr := prov.tracking(t, province, b.ID)
	want := map[string]string{"x1": loa.BulletinAired, "x2": loa.BulletinDeclined, "x3": loa.BulletinReceived, "xr": loa.BulletinAired}
	for area, state := range want {
		if tr[area].State != state {
			t.Errorf("%s is %s, want %s", area, tr[area].State, state)
		}
	}
	if !tr["x3"].Missed || tr["x1"].Missed || tr["x2"].Reason != "Trùng lịch tiếp dân" || tr["x1"].How != loa.AcceptSchedule {
		t.Errorf("tracking %+v", tr)
	}

	var text string
	if err := province.Do(ctx, "GET", "/api/v1/bulletins/"+b.ID+"/tracking?format=csv", "", nil, &text); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[0]] = r
	}
	if len(rows) != 5 || got["x1"][2] != "đã phát (thiết bị xác nhận)" || got["x1"][7] != "2" ||
		got["x2"][2] != "từ chối" || got["x2"][8] != "Trùng lịch tiếp dân" ||
		got["x3"][1] != "Xã Ba Tơ" || got["x3"][2] != "đã nhận" || got["x3"][3] != "có" ||
		got["xr"][2] != "đã phát (thiết bị xác nhận)" || got["xr"][7] != "1" {
		t.Errorf("tracking CSV:\n%s", text)
	}

	// x3 declining at last clears the alarm.
	op3, _ := prov.token(t, loa.RoleOperator, "x3")
	if err := op3.JSON(ctx, "POST", "/api/v1/bulletins/"+b.ID+"/decline", map[string]any{"area_id": "x3", "reason": "Mất điện"}, nil); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, 10*time.Second, func() bool {
		var active []loa.Alarm
		if err := prov.api.JSON(ctx, "GET", "/api/v1/alarms?active=true&kind="+loa.AlarmBulletinDeadline, nil, &active); err != nil {
			t.Fatal(err)
		}
		return len(active) == 0
	}, "the deadline alarm clears once x3 has decided")
}

// TestFeedSubscribeFile: the -feed-subscribe file is read and checked at
// start; what cannot work is refused, naming the entry and its field.
func TestFeedSubscribeFile(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := protocol.EncodeStationPublicKey(pub)
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "feeds.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := &Main{Config: Config{FeedSubscribe: write(`[{"url":"https://tinh.example","token":"loa_x","public_key":"` + key + `","area_id":"cm","every":"1m"}]`)}}
	subs, err := m.feedSubscriptions()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].AreaID != "cm" || subs[0].Every != time.Minute || !subs[0].PublicKey.Equal(pub) {
		t.Errorf("subscriptions %+v", subs)
	}
	for body, want := range map[string]string{
		`[{"url":"https://tinh.example","token":"loa_x","public_key":"AAAA","area_id":"cm"}]`:                          "public_key",
		`[{"url":"ftp://tinh.example","token":"loa_x","public_key":"` + key + `","area_id":"cm"}]`:                     "url",
		`[{"url":"https://tinh.example","token":"","public_key":"` + key + `","area_id":"cm"}]`:                        "token",
		`[{"url":"https://tinh.example","token":"loa_x","public_key":"` + key + `","area_id":"Xã"}]`:                   "area_id",
		`[{"url":"https://tinh.example","token":"loa_x","public_key":"` + key + `","area_id":"cm","ca_file":"/nope"}]`: "ca_file",
		`{`: "feed-subscribe",
	} {
		m := &Main{Config: Config{FeedSubscribe: write(body)}}
		if _, err := m.feedSubscriptions(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", body, err, want)
		}
	}
}
