package station_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
)

// bulletinAlarms records the station alarms raised and cleared.
type bulletinAlarms struct {
	mu      sync.Mutex
	active  map[string]string // kind → message
	raised  int
	amended int
	area    string // of the newest raise or amend
}

func (a *bulletinAlarms) RaiseStationIn(area, kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active[kind] = msg
	a.area = area
	a.raised++
}

func (a *bulletinAlarms) AmendStation(area, kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.area = area
	if _, ok := a.active[kind]; !ok {
		a.raised++
	}
	a.active[kind] = msg
	a.amended++
}

func (a *bulletinAlarms) ActiveStation(kind string) (loa.Alarm, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.active[kind]
	return loa.Alarm{Kind: kind, Msg: m}, ok
}

func (a *bulletinAlarms) ClearStation(kind, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.active, kind)
}

func (a *bulletinAlarms) msg(kind string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.active[kind]
	return m, ok
}

// TestBulletinTracking: a text bulletin spoken into media goes to three
// communes; c1 plays it now and is aired only once its receiver's played
// event is in the delivery lines; c2 misses the ưu tiên deadline (the
// alarm names it, and clears when it declines); c3 expires.
func TestBulletinTracking(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "", newFleet("d1"))
	for _, a := range []*loa.Area{
		{ID: "c1", ParentID: "xa", Name: "Xã Một", Kind: loa.AreaCommune},
		{ID: "c2", ParentID: "xa", Name: "Xã Hai", Kind: loa.AreaCommune},
		{ID: "c3", ParentID: "xa", Name: "Xã Ba", Kind: loa.AreaCommune},
	} {
		if err := w.db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.db.CreateDevice(ctx, &loa.Device{ID: "d1", AreaID: "c1"}); err != nil {
		t.Fatal(err)
	}
	alarms := &bulletinAlarms{active: map[string]string{}}
	m := station.NewMedia(w.db, media.Options{}, station.TranscodeLimits{}, discard)
	bl := station.NewBulletins(w.db, m, toneSpeech{}, w.sessions, nil, alarms, discard)
	var mu sync.Mutex
	now := time.Now().UTC()
	bl.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	b := &loa.Bulletin{Title: "Lịch tiêm chủng", Level: loa.BulletinPriority, Text: "Tiêm chủng mở rộng sáng thứ bảy.",
		ValidFrom: now, ValidUntil: now.Add(24 * time.Hour), MustAirBy: now.Add(time.Hour), Areas: []string{"c1", "c2", "c3"}}
	if err := bl.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.MediaID == "" || len(b.Communes) != 3 || b.Communes[0].State != loa.BulletinReceived {
		t.Fatalf("published %+v", b)
	}
	if _, err := w.db.Media(ctx, b.MediaID); err != nil {
		t.Fatalf("the spoken text is not a media item: %v", err)
	}

	got, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c1", How: loa.AcceptPlayNow, By: "op"})
	if err != nil {
		t.Fatal(err)
	}
	c1 := got.Commune("c1")
	if c1.State != loa.BulletinScheduled || c1.SessionID == "" {
		t.Fatalf("c1 after play now: %+v", c1)
	}
	if _, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c1", How: loa.AcceptPlayNow}); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("accepting twice: %v", err)
	}
	if _, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c9", How: loa.AcceptPlayNow}); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("accepting for a commune it is not for: %v", err)
	}
	if _, err := bl.Decline(ctx, b.ID, "c2", "op", "  "); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("declining without a reason: %v", err)
	}

	// Started is not aired: only the receiver's own event is.
	if err := bl.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := bl.Bulletin(ctx, b.ID); got.Commune("c1").State != loa.BulletinScheduled {
		t.Fatalf("c1 aired without evidence: %+v", got.Commune("c1"))
	}
	w.fleet.send("d1", played(c1.SessionID))
	loatest.Eventually(t, 10*time.Second, func() bool {
		if err := bl.Check(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := bl.Bulletin(ctx, b.ID)
		c := got.Commune("c1")
		return c.State == loa.BulletinAired && c.Receivers == 1 && !c.AiredAt.IsZero()
	}, "c1 aired from d1's played event")

	if _, ok := alarms.msg(loa.AlarmBulletinDeadline); ok {
		t.Fatal("the deadline alarm before the deadline")
	}
	advance(time.Hour)
	if err := bl.Check(ctx); err != nil {
		t.Fatal(err)
	}
	msg, ok := alarms.msg(loa.AlarmBulletinDeadline)
	if !ok || !strings.Contains(msg, "Xã Hai (c2)") || !strings.Contains(msg, "Xã Ba (c3)") || strings.Contains(msg, "(c1)") {
		t.Fatalf("deadline alarm %q (active %v), want c2 and c3 named", msg, ok)
	}
	if alarms.area != "xa" {
		t.Errorf("deadline alarm in area %q, want xa (holding c2 and c3: its staff are told)", alarms.area)
	}
	raised := alarms.raised
	if err := bl.Check(ctx); err != nil || alarms.raised != raised {
		t.Errorf("the same missed communes raise again: %v", err)
	}
	// A restarted controller finds the alarm it raised: no new raise
	// (which would lose its acknowledgement and notify everyone again).
	restarted := station.NewBulletins(w.db, m, toneSpeech{}, w.sessions, nil, alarms, discard)
	restarted.Now = bl.Now
	if err := restarted.Check(ctx); err != nil || alarms.raised != raised || alarms.amended != 0 {
		t.Errorf("after a restart: raised %d (was %d), amended %d: %v", alarms.raised, raised, alarms.amended, err)
	}
	if _, err := bl.Decline(ctx, b.ID, "c2", "op", "Mất điện"); err != nil {
		t.Fatal(err)
	}
	if msg, _ := alarms.msg(loa.AlarmBulletinDeadline); strings.Contains(msg, "(c2)") || !strings.Contains(msg, "(c3)") {
		t.Errorf("after c2 declined the alarm says %q", msg)
	}
	if alarms.raised != raised || alarms.amended != 1 {
		t.Errorf("one commune fewer late: raised %d (was %d), amended %d; want the alarm amended", alarms.raised, raised, alarms.amended)
	}
	if alarms.area != "c3" {
		t.Errorf("deadline alarm in area %q once c3 alone is late", alarms.area)
	}

	advance(24 * time.Hour)
	if err := bl.Check(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = bl.Bulletin(ctx, b.ID)
	if got.Commune("c1").State != loa.BulletinAired || got.Commune("c2").State != loa.BulletinDeclined ||
		got.Commune("c3").State != loa.BulletinExpired || !got.Commune("c3").Missed {
		t.Errorf("at the end: %+v", got.Communes)
	}
	if _, ok := alarms.msg(loa.AlarmBulletinDeadline); ok {
		t.Error("the deadline alarm outlives the bulletin")
	}
	if _, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c3", How: loa.AcceptPlayNow}); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("accepting an expired bulletin: %v", err)
	}
}

// TestBulletinIntoPlaylist: a commune takes a bulletin into a slot of
// the playlist its morning schedule plays: a copy with the bulletin at
// the slot, which the commune's schedule (and not another commune's)
// plays from now on; and a one-off schedule at a whole second.
func TestBulletinIntoPlaylist(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "", newFleet())
	for _, a := range []*loa.Area{
		{ID: "c1", ParentID: "xa", Name: "Xã Một", Kind: loa.AreaCommune},
		{ID: "c2", ParentID: "xa", Name: "Xã Hai", Kind: loa.AreaCommune},
		{ID: "c1-t1", ParentID: "c1", Name: "Thôn 1", Kind: loa.AreaCluster},
	} {
		if err := w.db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	sch := station.NewSchedules(w.db, discard)
	m := station.NewMedia(w.db, media.Options{}, station.TranscodeLimits{}, discard)
	bl := station.NewBulletins(w.db, m, toneSpeech{}, w.sessions, sch, nil, discard)
	other, err := m.ImportMedia(ctx, "nhạc", bytes.NewReader(wavOf(t, 0.5, 3)), "tok")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.CreatePlaylist(ctx, &loa.Playlist{ID: "sang", Name: "Chương trình sáng",
		Items: []loa.PlaylistItem{{MediaID: w.media.ID}, {MediaID: other.ID}}}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []*loa.Schedule{
		{ID: "sang-c1", Name: "Sáng", Rule: loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, Content: loa.Content{PlaylistID: "sang"},
			Targets: loa.Targets{Areas: []string{"c1-t1"}}, Priority: loa.PriorityNormal, Enabled: true},
		{ID: "sang-c2", Name: "Sáng", Rule: loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, Content: loa.Content{PlaylistID: "sang"},
			Targets: loa.Targets{Areas: []string{"c2"}}, Priority: loa.PriorityNormal, Enabled: true},
	} {
		if err := sch.CreateSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	b := &loa.Bulletin{Title: "Thông báo", Level: loa.BulletinNormal, MediaID: w.media.ID, ValidFrom: now,
		ValidUntil: now.Add(48 * time.Hour), Areas: []string{"c1", "c2"}}
	if err := bl.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c1", How: loa.AcceptPlaylist, PlaylistID: "none"}); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a playlist that does not exist: %v", err)
	}
	got, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c1", How: loa.AcceptPlaylist, PlaylistID: "sang", Position: 1, By: "op"})
	if err != nil {
		t.Fatal(err)
	}
	pid := got.Commune("c1").PlaylistID
	p, err := w.db.Playlist(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 3 || p.Items[0].MediaID != w.media.ID || p.Items[1].MediaID != b.MediaID || p.Items[2].MediaID != other.ID {
		t.Errorf("the copy's items %+v", p.Items)
	}
	if sc, _ := sch.Schedule(ctx, "sang-c1"); sc.Content.PlaylistID != pid {
		t.Errorf("c1's schedule plays %q, want the copy %q", sc.Content.PlaylistID, pid)
	}
	if sc, _ := sch.Schedule(ctx, "sang-c2"); sc.Content.PlaylistID != "sang" {
		t.Errorf("c2's schedule plays %q: another commune's programme changed", sc.Content.PlaylistID)
	}

	at := now.Add(3*time.Hour + 700*time.Millisecond)
	if _, err := bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c2", How: loa.AcceptSchedule, At: now.Add(72 * time.Hour)}); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a time past the validity: %v", err)
	}
	got, err = bl.Accept(ctx, b.ID, loa.BulletinAcceptance{AreaID: "c2", How: loa.AcceptSchedule, At: at})
	if err != nil {
		t.Fatal(err)
	}
	c2 := got.Commune("c2")
	next, err := sch.NextOccurrences(ctx, c2.ScheduleID, now, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || !next[0].At.Equal(at.Truncate(time.Second)) || next[0].Content.MediaID != b.MediaID || next[0].Priority != loa.PriorityNormal {
		t.Errorf("the one-off schedule's occurrences %+v, want one at %v", next, at.Truncate(time.Second))
	}
}
