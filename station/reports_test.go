package station_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/reportdoc"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

var hcm = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		panic(err)
	}
	return loc
}()

// nov is a local time of November 2026 in the station's zone.
func nov(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, hcm) }

// frames is m minutes of 20 ms frames.
func frames(m int) uint64 { return uint64(m) * 3000 }

// reportWorld writes a month (November 2026) of synthetic history through
// the store: the expected numbers in TestBroadcastReport are worked out by
// hand from what is written here (each is explained beside it).
func reportWorld(t *testing.T) (*store.DB, *station.Reports) {
	t.Helper()
	ctx := context.Background()
	clock := time.Date(2026, 10, 1, 8, 0, 0, 0, hcm)
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{Logger: discard, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateAreas(ctx, []*loa.Area{
		{ID: "qn", Name: "Quảng Ngãi", Kind: loa.AreaProvince},
		{ID: "bc", ParentID: "qn", Name: "Bình Châu", Kind: loa.AreaCommune},
		{ID: "bc-1", ParentID: "bc", Name: "Thôn Châu Thuận", Kind: loa.AreaCluster},
		{ID: "bc-2", ParentID: "bc", Name: "Thôn Phước Thiện", Kind: loa.AreaCluster},
		{ID: "tk", ParentID: "qn", Name: "Tịnh Kỳ", Kind: loa.AreaCommune},
		{ID: "tk-1", ParentID: "tk", Name: "Thôn Kỳ Xuyên", Kind: loa.AreaCluster},
	}))
	for _, d := range []struct{ id, area, name string }{
		{"rx-1", "bc-1", "Loa Châu Thuận 1"}, {"rx-2", "bc-1", "Loa Châu Thuận 2"}, {"rx-3", "bc-2", "Loa Phước Thiện 1"},
		{"rx-4", "tk-1", "Loa Kỳ Xuyên"}, {"rx-6", "bc-2", "Loa cũ"}, {"rx-7", "bc-1", "Loa Châu Thuận 3"},
	} {
		_, err := db.CreateDevice(ctx, &loa.Device{ID: d.id, AreaID: d.area, Name: d.name})
		must(err)
	}
	// rx-6 left service in October: not in November's report at all.
	clock = time.Date(2026, 10, 20, 0, 0, 0, 0, hcm)
	_, err = db.DecommissionDevice(ctx, "rx-6")
	must(err)
	// rx-7 left service on 11/11 00:00: in service 10 days (240 h).
	clock = nov(11, 0, 0)
	_, err = db.DecommissionDevice(ctx, "rx-7")
	must(err)
	// rx-5 came into service on 16/11 00:00: 15 days (360 h).
	clock = nov(16, 0, 0)
	_, err = db.CreateDevice(ctx, &loa.Device{ID: "rx-5", AreaID: "bc-2", Name: "Loa Phước Thiện 2"})
	must(err)
	must(db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-1", Caps: []string{"srtp-gcm", "fence"}}, {ID: "rx-3"}}))

	// Health: the month is 720 hours from 01/11 00:00 (+07).
	start := nov(1, 0, 0)
	var hours []loa.HealthHour
	for i := range 720 {
		at := start.Add(time.Duration(i) * time.Hour)
		hours = append(hours,
			loa.HealthHour{Device: "rx-1", Hour: at, OnlineSeconds: 3600, Received: 1000}, // 720 h online, 720 000 packets
			loa.HealthHour{Device: "rx-3", Hour: at, OnlineSeconds: 1800, Received: 100},  // 360 h online, 72 000 packets
			loa.HealthHour{Device: "rx-4", Hour: at, OnlineSeconds: 3600})                 // 720 h
		if i >= 20 { // rx-2 was offline the first 20 hours: 700 h
			hours = append(hours, loa.HealthHour{Device: "rx-2", Hour: at, OnlineSeconds: 3600})
		}
		if i < 240 { // rx-7 until it left: 240 h
			hours = append(hours, loa.HealthHour{Device: "rx-7", Hour: at, OnlineSeconds: 3600})
		}
		if i >= 360 { // rx-5 from its start: 360 h
			hours = append(hours, loa.HealthHour{Device: "rx-5", Hour: at, OnlineSeconds: 3600})
		}
	}
	// Outside the month: not counted.
	hours = append(hours, loa.HealthHour{Device: "rx-1", Hour: start.Add(-time.Hour), OnlineSeconds: 3600, Received: 5000},
		loa.HealthHour{Device: "rx-1", Hour: start.Add(720 * time.Hour), OnlineSeconds: 3600, Received: 5000})
	must(db.PutHealthHours(ctx, hours))

	// Sessions and their receivers' delivery lines.
	type line = loa.ReceiverDelivery
	fin := func(dev string, played uint64) line {
		return line{Device: dev, State: loa.DeliveryFinished, Evidence: loa.EvidenceEvent, Played: played}
	}
	sessions := []struct {
		s     loa.Session
		lines []line
	}{
		{loa.Session{ID: "s1", MediaID: "m-news", Priority: 64, State: loa.SessionEnded, StartedAt: nov(3, 6, 0),
			Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sc-sang"}, Devices: []string{"rx-1", "rx-2", "rx-3"}},
			[]line{fin("rx-1", frames(30)), fin("rx-2", frames(30)), fin("rx-3", frames(30))}},
		{loa.Session{ID: "s2", MediaID: "m-news", Priority: 64, State: loa.SessionEnded, StartedAt: nov(4, 6, 0),
			Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sc-sang"}, Devices: []string{"rx-1", "rx-2", "rx-3"}},
			[]line{fin("rx-1", frames(30)), {Device: "rx-2", State: loa.DeliveryFailed, Reason: loa.ReasonOffline},
				{Device: "rx-3", State: loa.DeliveryFinished, Reason: loa.ReasonPartial, Played: frames(20)}}},
		{loa.Session{ID: "s3", MediaID: "m-music", Priority: 100, State: loa.SessionStopped, StartedAt: nov(10, 14, 0),
			Origin: loa.Origin{Kind: loa.OriginManual}, Devices: []string{"rx-1", "rx-2", "rx-3"}},
			[]line{{Device: "rx-1", State: loa.DeliveryStopped, Played: frames(10)}, {Device: "rx-2", State: loa.DeliveryStopped, Played: frames(10)},
				{Device: "rx-3", State: loa.DeliveryStopped, Played: frames(10)}}},
		{loa.Session{ID: "s4", Priority: 240, State: loa.SessionEnded, StartedAt: nov(15, 9, 0),
			Origin: loa.Origin{Kind: loa.OriginAlert, ID: "al-1"}, Devices: []string{"rx-1", "rx-2", "rx-3"}},
			[]line{fin("rx-1", frames(2)), fin("rx-2", frames(2)), {Device: "rx-3", State: loa.DeliveryFailed, Reason: loa.ReasonOffline}}},
		{loa.Session{ID: "s5", MediaID: "m-news", Priority: 64, State: loa.SessionEnded, StartedAt: nov(20, 6, 0),
			Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sc-sang"}, Devices: []string{"rx-1", "rx-2", "rx-3"}},
			[]line{{Device: "rx-1", State: loa.DeliveryFailed, Reason: loa.ReasonNoAck}, {Device: "rx-2", State: loa.DeliveryFailed, Reason: loa.ReasonNoStream},
				{Device: "rx-3", State: loa.DeliveryFailed, Reason: loa.ReasonOffline}}},
		{loa.Session{ID: "s6", MediaID: "m-music", Priority: 10, State: loa.SessionStopped, StartedAt: nov(21, 0, 0),
			Origin: loa.Origin{Kind: loa.OriginFallback, ID: "bc"}, Devices: []string{"rx-1"}},
			[]line{{Device: "rx-1", State: loa.DeliveryStopped, Reason: loa.ReasonPreempted, Played: frames(60)}}},
		{loa.Session{ID: "s7", MediaID: "m-music", Priority: 150, State: loa.SessionEnded, StartedAt: nov(25, 7, 0),
			Origin: loa.Origin{Kind: loa.OriginLive}, Devices: []string{"rx-5"}},
			[]line{{Device: "rx-5", State: loa.DeliveryFinished, Evidence: loa.EvidenceRTCP, RTPReceived: frames(15)}}},
		{loa.Session{ID: "s8", MediaID: "m-news", Priority: 64, State: loa.SessionEnded, StartedAt: nov(5, 6, 0),
			Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sc-tk"}, Devices: []string{"rx-4"}},
			[]line{fin("rx-4", frames(30))}},
		{loa.Session{ID: "s9", MediaID: "m-news", Priority: 64, State: loa.SessionEnded, StartedAt: nov(1, 0, 0).Add(-time.Hour),
			Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sc-sang"}, Devices: []string{"rx-1"}},
			[]line{fin("rx-1", frames(30))}},
		{loa.Session{ID: "s10", PlaylistID: "pl-tin", Priority: 64, State: loa.SessionEnded, StartedAt: nov(28, 19, 0),
			Origin: loa.Origin{Kind: loa.OriginManual}, Devices: []string{"rx-1", "rx-4"}},
			[]line{fin("rx-1", frames(10)), fin("rx-4", frames(20))}},
	}
	lines := map[string][]loa.ReceiverDelivery{}
	for _, x := range sessions {
		s := x.s
		must(db.PutSession(ctx, &s))
		lines[s.ID] = x.lines
	}
	must(db.PutDeliveries(ctx, lines))
	must(db.PutMedia(ctx, &loa.Media{ID: "m-news", Name: "Bản tin sáng", Hash: strings.Repeat("a", 64)}))

	// Schedule occurrences that never started.
	must(db.AppendPlayLog(ctx,
		loa.PlayLogEntry{At: nov(12, 6, 0), Event: loa.PlayMissed, ScheduleID: "sc-sang", Occurrence: nov(12, 6, 0), Areas: []string{"bc"}, Content: loa.Content{MediaID: "m-news"}},
		loa.PlayLogEntry{At: nov(13, 6, 0), Event: loa.PlayMissed, ScheduleID: "sc-tk", Occurrence: nov(13, 6, 0), Areas: []string{"tk"}},
		loa.PlayLogEntry{At: nov(12, 6, 5), Event: loa.PlayStarted, ScheduleID: "sc-sang", Areas: []string{"bc"}},
		loa.PlayLogEntry{At: time.Date(2026, 12, 1, 6, 0, 0, 0, hcm), Event: loa.PlayMissed, ScheduleID: "sc-sang", Areas: []string{"bc"}},
	))

	// Alerts and their delivery reports.
	for _, a := range []*loa.Alert{
		{ID: "al-1", Title: "Bão số 13 đổ bộ", Level: loa.AlertEmergency, State: loa.AlertFinished, CreatedAt: nov(15, 9, 0), Report: []loa.Delivery{
			{Device: "rx-1", Area: "bc-1", State: loa.DeliveryFinished}, {Device: "rx-2", Area: "bc-1", State: loa.DeliveryFinished},
			{Device: "rx-3", Area: "bc-2", State: loa.DeliveryFailed, Reason: loa.ReasonOffline}, {Device: "rx-4", Area: "tk-1", State: loa.DeliveryFinished}}},
		{ID: "al-2", Title: "Diễn tập sơ tán", Level: loa.AlertPriority, Test: true, State: loa.AlertExpired, CreatedAt: nov(22, 10, 0), Report: []loa.Delivery{
			{Device: "rx-1", Area: "bc-1", State: loa.DeliveryFinished}, {Device: "rx-2", Area: "bc-1", State: loa.DeliveryStarted, Reason: loa.ReasonPartial},
			{Device: "rx-5", Area: "bc-2", State: loa.DeliveryFinished}}},
		{ID: "al-3", Title: "Tháng trước", Level: loa.AlertPriority, State: loa.AlertFinished, CreatedAt: nov(1, 0, 0).Add(-time.Minute), Report: []loa.Delivery{
			{Device: "rx-1", Area: "bc-1", State: loa.DeliveryFailed}}},
	} {
		must(db.CreateAlert(ctx, a))
	}

	// Alarms.
	must(db.PutAlarms(ctx, []loa.Alarm{
		{ID: "a1", Device: "rx-5", Area: "bc-2", Kind: loa.AlarmOffline, RaisedAt: time.Date(2026, 10, 30, 8, 0, 0, 0, hcm), ClearedAt: nov(1, 8, 0)},
		{ID: "a2", Device: "rx-2", Area: "bc-1", Kind: loa.AlarmOffline, RaisedAt: nov(7, 8, 0), ClearedAt: nov(7, 10, 0)},                             // 120 min
		{ID: "a3", Device: "rx-3", Area: "bc-2", Kind: loa.AlarmAmpFault, RaisedAt: nov(9, 12, 0), ClearedAt: nov(10, 12, 0)},                          // 1440 min
		{ID: "a4", Device: "rx-4", Area: "tk-1", Kind: loa.AlarmOffline, RaisedAt: nov(11, 0, 0), ClearedAt: nov(11, 1, 0)},                            // 60 min
		{ID: "a5", Device: "", Kind: loa.AlarmDiskSpace, RaisedAt: nov(12, 0, 0)},                                                                      // the station's: not a receiver's
		{ID: "a6", Device: "rx-3", Area: "bc-2", Kind: loa.AlarmOffline, RaisedAt: nov(29, 20, 0), ClearedAt: time.Date(2026, 12, 2, 8, 0, 0, 0, hcm)}, // open at the end
	}))

	r := station.NewReports(db)
	r.Now = func() time.Time { return time.Date(2026, 12, 3, 9, 0, 0, 0, hcm) }
	return db, r
}

func TestBroadcastReport(t *testing.T) {
	_, r := reportWorld(t)
	ctx := context.Background()
	start, end := nov(1, 0, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, hcm)

	bc, err := r.BroadcastReport(ctx, "bc", start, end)
	if err != nil {
		t.Fatal(err)
	}
	// Aired in Bình Châu: s1, s2, s3, s4, s6, s7, s10 (s5 nobody played,
	// s8 is Tịnh Kỳ's, s9 October's). Longest play of each: 30 + 30 + 10 +
	// 2 + 60 + 15 + 10 = 157 min = 2.62 h; summed over receivers: 90 + 50
	// + 30 + 4 + 60 + 15 + 10 = 259 min = 4.32 h.
	if a := bc.Aired; a.Programmes != 7 || a.Hours != 2.62 || a.ReceiverHours != 4.32 {
		t.Errorf("aired = %d programmes, %v h, %v receiver-hours; want 7, 2.62, 4.32", a.Programmes, a.Hours, a.ReceiverHours)
	}
	// By category: schedule s1+s2 60 min; manual s3+s10 20 min; alert s4
	// 2 min; live s7 15 min; fallback s6 60 min.
	wantCat := []loa.ReportBucket{{Key: "schedule", Programmes: 2, Hours: 1}, {Key: "manual", Programmes: 2, Hours: 0.33},
		{Key: "alert", Programmes: 1, Hours: 0.03}, {Key: "live", Programmes: 1, Hours: 0.25}, {Key: "fallback", Programmes: 1, Hours: 1}}
	if !equalBuckets(bc.Aired.ByCategory, wantCat) {
		t.Errorf("by category = %+v, want %+v", bc.Aired.ByCategory, wantCat)
	}
	// By band: s4 at 240; s7 at 150; s1, s2, s3, s10 (80 min); s6 at 10.
	wantBand := []loa.ReportBucket{{Key: "emergency", Programmes: 1, Hours: 0.03}, {Key: "priority", Programmes: 1, Hours: 0.25},
		{Key: "normal", Programmes: 4, Hours: 1.33}, {Key: "background", Programmes: 1, Hours: 1}}
	if !equalBuckets(bc.Aired.ByBand, wantBand) {
		t.Errorf("by band = %+v, want %+v", bc.Aired.ByBand, wantBand)
	}
	// Missed: the 12/11 occurrence, and s5 that no receiver played. Cut:
	// s2 (rx-3 partial) and s3 (stopped); s6 is the background programme.
	if m := bc.Missed; m.Total != 2 || m.Occurrences != 1 || m.NotAired != 1 || len(m.List) != 2 ||
		m.List[0].Why != "missed" || m.List[0].Content != "Bản tin sáng" || m.List[1].Session != "s5" {
		t.Errorf("missed = %+v", m)
	}
	if bc.Cut != 2 || len(bc.CutList) != 2 || bc.CutList[0].Session != "s2" || bc.CutList[0].Why != "partial" ||
		bc.CutList[1].Session != "s3" || bc.CutList[1].Why != "stopped" {
		t.Errorf("cut = %d %+v", bc.Cut, bc.CutList)
	}
	// Alerts: al-1 2 of 3 here, al-2 2 of 3 (rx-2 only started); al-3 is October's.
	if a := bc.Alerts; a.Count != 2 || a.Receivers != 6 || a.Delivered != 4 || a.RatePct != 66.7 ||
		a.List[0].ID != "al-1" || a.List[0].RatePct != 66.7 || !a.List[1].Test {
		t.Errorf("alerts = %+v", a)
	}
	// Availability: online rx-1 720 + rx-2 700 + rx-3 360 + rx-5 360 +
	// rx-7 240 = 2380 h of 720·3 + 360 + 240 = 2760 h in service: 86.2 %.
	// Villages: bc-1 (rx-1, rx-2, rx-7) 1660/1680 = 98.8 %, bc-2 (rx-3,
	// rx-5) 720/1080 = 66.7 %.
	if av := bc.Availability; av.HoursOnline != 2380 || av.HoursExpected != 2760 || av.Pct != 86.2 || len(av.Receivers) != 5 {
		t.Errorf("availability = %v/%v h %v %% over %d receivers; want 2380/2760 86.2 over 5", av.HoursOnline, av.HoursExpected, av.Pct, len(av.Receivers))
	}
	wantVil := []loa.ReportVillageAvail{{Area: "bc-1", Name: "Thôn Châu Thuận", Receivers: 3, HoursOnline: 1660, HoursExpected: 1680, Pct: 98.8},
		{Area: "bc-2", Name: "Thôn Phước Thiện", Receivers: 2, HoursOnline: 720, HoursExpected: 1080, Pct: 66.7}}
	if len(bc.Availability.Villages) != 2 || bc.Availability.Villages[0] != wantVil[0] || bc.Availability.Villages[1] != wantVil[1] {
		t.Errorf("villages = %+v, want %+v", bc.Availability.Villages, wantVil)
	}
	for _, rx := range bc.Availability.Receivers {
		want := map[string]float64{"rx-1": 100, "rx-2": 97.2, "rx-3": 50, "rx-5": 100, "rx-7": 100}[rx.Device]
		if rx.Pct != want {
			t.Errorf("%s availability %v %%, want %v", rx.Device, rx.Pct, want)
		}
	}
	// Alarms raised in November here: a2 (120 min), a3 (1440 min), a6
	// (open at the end): MTTR (120 + 1440) / 2 = 780 min.
	wantKinds := []loa.ReportAlarmKind{{Kind: "amp_fault", Raised: 1, Repaired: 1, MTTRMinutes: 1440}, {Kind: "offline", Raised: 2, Repaired: 1, MTTRMinutes: 120}}
	if al := bc.Alarms; al.Raised != 3 || al.Repaired != 2 || al.Open != 1 || al.MTTRMinutes != 780 ||
		len(al.ByKind) != 2 || al.ByKind[0] != wantKinds[0] || al.ByKind[1] != wantKinds[1] {
		t.Errorf("alarms = %+v", al)
	}
	// Data: rx-1 (SRTP) 720 000 packets × 136 B, rx-3 72 000 × 120 B.
	if bc.Data.Bytes != 97_920_000+8_640_000 {
		t.Errorf("data = %d bytes, want 106 560 000", bc.Data.Bytes)
	}
	if len(bc.Communes) != 0 {
		t.Errorf("a commune's report has commune lines: %+v", bc.Communes)
	}

	qn, err := r.BroadcastReport(ctx, "qn", start, end)
	if err != nil {
		t.Fatal(err)
	}
	// The province: s8 too, and s10 counts once at its longest play (rx-4's
	// 20 min): 157 − 10 + 20 + 30 = 197 min = 3.28 h.
	if qn.Aired.Programmes != 8 || qn.Aired.Hours != 3.28 || qn.Missed.Total != 3 || qn.Cut != 2 {
		t.Errorf("province: %d programmes %v h, missed %d, cut %d; want 8, 3.28, 3, 2", qn.Aired.Programmes, qn.Aired.Hours, qn.Missed.Total, qn.Cut)
	}
	// al-1 3 of 4, al-2 2 of 3: 5 of 7 = 71.4 %; online 2380 + 720 of 2760 + 720 = 89.1 %;
	// MTTR (120 + 1440 + 60) / 3 = 540 min.
	if qn.Alerts.RatePct != 71.4 || qn.Availability.Pct != 89.1 || qn.Alarms.MTTRMinutes != 540 || qn.Alarms.Raised != 4 {
		t.Errorf("province: alerts %v %%, availability %v %%, MTTR %v min, %d alarms; want 71.4, 89.1, 540, 4",
			qn.Alerts.RatePct, qn.Availability.Pct, qn.Alarms.MTTRMinutes, qn.Alarms.Raised)
	}
	wantCommunes := []loa.ReportAreaSummary{
		{Area: "bc", Name: "Bình Châu", Programmes: 7, Hours: 2.62, Missed: 2, Cut: 2, AlertRatePct: 66.7, AvailabilityPct: 86.2, MTTRMinutes: 780},
		{Area: "tk", Name: "Tịnh Kỳ", Programmes: 2, Hours: 0.83, Missed: 1, Cut: 0, AlertRatePct: 100, AvailabilityPct: 100, MTTRMinutes: 60},
	}
	if len(qn.Communes) != 2 || qn.Communes[0] != wantCommunes[0] || qn.Communes[1] != wantCommunes[1] {
		t.Errorf("communes = %+v, want %+v", qn.Communes, wantCommunes)
	}

	if _, err := r.BroadcastReport(ctx, "nowhere", start, end); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown area: %v, want not found", err)
	}
	if _, err := r.BroadcastReport(ctx, "bc", end, start); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("to before from: %v, want invalid", err)
	}

	t.Run("documents", func(t *testing.T) { reportDocuments(t, bc, qn) })
}

func equalBuckets(got, want []loa.ReportBucket) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// reportDocuments renders the reports and reads the files back.
func reportDocuments(t *testing.T, bc, qn *loa.BroadcastReport) {
	for _, r := range []*loa.BroadcastReport{bc, qn} {
		r.Station, r.From, r.To, r.Zone = "Đài truyền thanh Bình Châu", "2026-11-01", "2026-11-30", "Asia/Ho_Chi_Minh"
	}
	var buf bytes.Buffer
	if err := reportdoc.WriteCSV(&buf, bc, hcm); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\uFEFF")) {
		t.Error("the CSV has no byte order mark")
	}
	rd := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(buf.Bytes(), []byte("\uFEFF"))))
	rd.FieldsPerRecord = -1
	rows, err := rd.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	find := func(label string) []string {
		for _, r := range rows {
			if len(r) > 1 && r[0] == label {
				return r
			}
		}
		t.Errorf("CSV has no line %q", label)
		return []string{"", ""}
	}
	if got := find("Đơn vị"); got[1] != "Xã Bình Châu" {
		t.Errorf("CSV unit = %q", got[1])
	}
	if got := find("Số giờ phát"); got[1] != "2.62" {
		t.Errorf("CSV hours = %q, want 2.62", got[1])
	}
	if got := find("Thôn Phước Thiện"); got[4] != "66.7" {
		t.Errorf("CSV village line = %q", got)
	}
	if got := find("Kỳ báo cáo"); got[1] != "từ 01/11/2026 đến 30/11/2026" {
		t.Errorf("CSV period = %q", got[1])
	}

	buf.Reset()
	if err := reportdoc.WriteXLSX(&buf, qn, hcm); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.GetCellValue("Tổng hợp", "B3"); v != "Tỉnh Quảng Ngãi" {
		t.Errorf("XLSX unit B3 = %q", v)
	}
	xrows, err := f.GetRows("Theo xã")
	if err != nil {
		t.Fatal(err)
	}
	if len(xrows) != 4 || xrows[2][0] != "Bình Châu" || xrows[2][2] != "2.62" || xrows[3][0] != "Tịnh Kỳ" || xrows[3][6] != "100" {
		t.Errorf("XLSX communes = %q", xrows)
	}
	if typ, _ := f.GetCellType("Theo xã", "C3"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("XLSX hours cell is of type %v, want a number", typ)
	}

	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext is not installed; `make test` installs poppler-utils")
		}
		t.Skip("pdftotext (poppler-utils) is not installed: make test installs it")
	}
	buf.Reset()
	if err := reportdoc.WritePDF(&buf, bc, hcm); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if a := os.Getenv("LOA_ARTIFACTS"); a != "" { // to look at
		dir = a
	}
	path := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdftotext, "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := string(out)
	for _, want := range []string{"Xã Bình Châu", "BÁO CÁO HOẠT ĐỘNG TRUYỀN THANH CƠ SỞ", "Đài truyền thanh Bình Châu",
		"từ 01/11/2026 đến 30/11/2026", "Thôn Phước Thiện", "Bão số 13 đổ bộ", "2,62", "THỦ TRƯỞNG ĐƠN VỊ"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q:\n%s", want, text)
		}
	}
}
