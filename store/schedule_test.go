package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

func sampleSchedule(id string) *loa.Schedule {
	return &loa.Schedule{
		ID:   id,
		Name: "Bản tin sáng",
		Rule: loa.Rule{Kind: loa.RuleWeekly, Date: "2027-01-04", Time: "06:00", Weekdays: []string{"mon", "wed"}, Zone: loa.DefaultZone},
		Exceptions: loa.Exceptions{
			Skip:      []string{"2027-02-10"},
			Calendars: []string{"Tết 2027"},
			Replace:   map[string]loa.Replacement{"2027-01-06": {Content: loa.Content{MediaID: "m2"}, Time: "07:00"}},
		},
		Content:  loa.Content{PlaylistID: "sang"},
		Targets:  loa.Targets{Areas: []string{"qn.tk"}, Devices: []string{"rx-1"}},
		Priority: 40,
		Overrun:  loa.OverrunWait,
		MaxWait:  5 * time.Minute,
		Enabled:  true,
	}
}

func TestSchedules_CRUD(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()

	s := sampleSchedule("sang")
	if err := db.CreateSchedule(ctx, s); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.CreateSchedule(ctx, sampleSchedule("sang")), loa.ECONFLICT)
	wantCode(t, db.CreateSchedule(ctx, sampleSchedule("Bad ID")), loa.EINVALID)
	wantCode(t, db.PutSchedule(ctx, sampleSchedule("")), loa.EINVALID)
	wantCode(t, db.PutSchedule(ctx, nil), loa.EINVALID)
	wantCode(t, db.CreateSchedule(ctx, nil), loa.EINVALID)

	// Put inserts and replaces.
	chieu := sampleSchedule("chieu")
	chieu.Rule.Time = "17:00"
	if err := db.PutSchedule(ctx, chieu); err != nil {
		t.Fatal(err)
	}
	chieu.Enabled = false
	if err := db.PutSchedule(ctx, chieu); err != nil {
		t.Fatal(err)
	}
	// Mutating the caller's value after the write changes nothing stored.
	s.Name = "changed"
	s.Targets.Areas[0] = "changed"

	// Survives a reopen, every field intact.
	db.Close()
	db = mustOpenPath(t, path)
	got, err := db.Schedule(ctx, "sang")
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleSchedule("sang"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Schedule = %+v\nwant %+v", got, want)
	}
	if got, err := db.Schedule(ctx, "chieu"); err != nil || got.Enabled || got.Rule.Time != "17:00" {
		t.Fatalf("Schedule(chieu) = %+v, %v", got, err)
	}

	// Returned values are copies.
	got.Targets.Areas[0] = "changed"
	got.Exceptions.Replace["2027-01-06"] = loa.Replacement{Time: "09:00"}
	again, _ := db.Schedule(ctx, "sang")
	if again.Targets.Areas[0] != "qn.tk" || again.Exceptions.Replace["2027-01-06"].Time != "07:00" {
		t.Error("mutating a returned schedule changed the db")
	}

	all, err := db.Schedules(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "chieu" || all[1].ID != "sang" {
		t.Fatalf("Schedules = %v, %v; want chieu, sang", all, err)
	}

	wantCode(t, db.DeleteSchedule(ctx, "nope"), loa.ENOTFOUND)
	wantCode(t, db.DeleteSchedule(ctx, ""), loa.ENOTFOUND)
	if err := db.DeleteSchedule(ctx, "sang"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Schedule(ctx, "sang")
	wantCode(t, err, loa.ENOTFOUND)
	wantMessage(t, err, "sang")
	_, err = db.Schedule(ctx, "")
	wantCode(t, err, loa.ENOTFOUND)
	wantCode(t, db.DeleteSchedule(ctx, "sang"), loa.ENOTFOUND)
	if all, err := db.Schedules(ctx); err != nil || len(all) != 1 || all[0].ID != "chieu" {
		t.Fatalf("Schedules after delete = %v, %v", all, err)
	}
}

func TestSchedules_Empty(t *testing.T) {
	db := mustOpen(t)
	if all, err := db.Schedules(context.Background()); err != nil || len(all) != 0 {
		t.Fatalf("Schedules = %v, %v; want none", all, err)
	}
}

func TestCalendars(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()

	if cs, err := db.Calendars(ctx); err != nil || cs == nil || len(cs) != 0 {
		t.Fatalf("Calendars on an empty db = %v, %v; want an empty map", cs, err)
	}
	tet := loa.Calendar{Name: "Tết 2027", Dates: []string{"2027-02-05", "2027-02-06", "2027-02-07"}}
	if err := db.PutCalendar(ctx, tet); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCalendar(ctx, loa.Calendar{Name: "Quốc khánh", Dates: []string{"09-01"}}); err != nil {
		t.Fatal(err)
	}
	// Replace by name.
	if err := db.PutCalendar(ctx, loa.Calendar{Name: "Quốc khánh", Dates: []string{"09-02"}}); err != nil {
		t.Fatal(err)
	}
	tet.Dates[0] = "changed" // the caller's slice after the write

	wantCode(t, db.PutCalendar(ctx, loa.Calendar{Dates: []string{"01-01"}}), loa.EINVALID)
	wantCode(t, db.PutCalendar(ctx, loa.Calendar{Name: strings.Repeat("ă", 51)}), loa.EINVALID) // 102 bytes
	wantCode(t, db.PutCalendar(ctx, loa.Calendar{Name: "bad\xff"}), loa.EINVALID)
	if err := db.PutCalendar(ctx, loa.Calendar{Name: strings.Repeat("a", store.MaxCalendarName)}); err != nil {
		t.Fatalf("100-byte name: %v", err)
	}

	db.Close()
	db = mustOpenPath(t, path)
	cs, err := db.Calendars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("Calendars = %v, want 3", cs)
	}
	if got := cs["Tết 2027"]; got.Name != "Tết 2027" || !reflect.DeepEqual(got.Dates, []string{"2027-02-05", "2027-02-06", "2027-02-07"}) {
		t.Errorf("Tết 2027 = %+v", got)
	}
	if got := cs["Quốc khánh"]; !reflect.DeepEqual(got.Dates, []string{"09-02"}) {
		t.Errorf("Quốc khánh = %+v, want replaced dates", got)
	}
	cs["Tết 2027"].Dates[0] = "changed"
	again, _ := db.Calendars(ctx)
	if again["Tết 2027"].Dates[0] != "2027-02-05" {
		t.Error("mutating returned calendars changed the db")
	}
}

func TestSchedulerHandled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()

	if got, err := db.SchedulerHandled(ctx); err != nil || !got.IsZero() {
		t.Fatalf("SchedulerHandled on an empty db = %v, %v; want zero", got, err)
	}
	hcm := time.FixedZone("ICT", 7*3600)
	at := time.Date(2027, 1, 4, 6, 0, 0, 123456789, hcm)
	if err := db.PutSchedulerHandled(ctx, at); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpenPath(t, path)
	got, err := db.SchedulerHandled(ctx)
	if err != nil || !got.Equal(at) || got.Location() != time.UTC {
		t.Fatalf("SchedulerHandled = %v, %v; want %v in UTC", got, err, at)
	}
	later := at.Add(time.Minute)
	if err := db.PutSchedulerHandled(ctx, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.SchedulerHandled(ctx); !got.Equal(later) {
		t.Fatalf("SchedulerHandled = %v, want %v", got, later)
	}
}

func TestMarkStarted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	at := time.Date(2027, 1, 4, 6, 0, 0, 0, time.UTC)
	occ := loa.Occurrence{ScheduleID: "sang", At: at}

	if already, err := db.MarkStarted(ctx, occ.Key(), at); err != nil || already {
		t.Fatalf("first MarkStarted = %v, %v; want false", already, err)
	}
	if already, err := db.MarkStarted(ctx, occ.Key(), at.Add(time.Second)); err != nil || !already {
		t.Fatalf("second MarkStarted = %v, %v; want true", already, err)
	}
	other := loa.Occurrence{ScheduleID: "chieu", At: at}
	if already, err := db.MarkStarted(ctx, other.Key(), at); err != nil || already {
		t.Fatalf("MarkStarted of another key = %v, %v; want false", already, err)
	}

	db.Close()
	db = mustOpenPath(t, path)
	for _, k := range []string{occ.Key(), other.Key()} {
		if already, err := db.MarkStarted(ctx, k, at.Add(time.Hour)); err != nil || !already {
			t.Fatalf("MarkStarted(%s) after reopen = %v, %v; want true", k, already, err)
		}
	}

	_, err := db.MarkStarted(ctx, "", at)
	wantCode(t, err, loa.EINVALID)
	_, err = db.MarkStarted(ctx, strings.Repeat("k", store.MaxStartedKey+1), at)
	wantCode(t, err, loa.EINVALID)

	// A zero time means now: still recorded once.
	if already, err := db.MarkStarted(ctx, "zero", time.Time{}); err != nil || already {
		t.Fatalf("MarkStarted with zero time = %v, %v", already, err)
	}
	if already, err := db.MarkStarted(ctx, "zero", time.Time{}); err != nil || !already {
		t.Fatalf("MarkStarted with zero time again = %v, %v", already, err)
	}
}

func TestMarkStarted_Concurrent(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2027, 1, 4, 6, 0, 0, 0, time.UTC)
	key := loa.Occurrence{ScheduleID: "sang", At: at}.Key()

	const n = 8
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		first, errs int
		start       = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			already, err := db.MarkStarted(ctx, key, at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				t.Error(err)
			} else if !already {
				first++
			}
		})
	}
	close(start)
	wg.Wait()
	if first != 1 || errs != 0 {
		t.Fatalf("%d of %d concurrent MarkStarted calls returned false (%d errors), want exactly 1", first, n, errs)
	}
}

func TestMarkStarted_PrunesOldKeys(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC)
	day := 24 * time.Hour

	mark := func(key string, at time.Time) bool {
		t.Helper()
		already, err := db.MarkStarted(ctx, key, at)
		if err != nil {
			t.Fatal(err)
		}
		return already
	}
	for i := range 5 {
		mark(fmt.Sprintf("old-%d", i), t0.Add(time.Duration(i)*time.Minute))
	}
	mark("mid", t0.Add(20*day))
	// Exactly at the retention edge: kept (only strictly older is pruned).
	mark("edge", t0.Add(31*day).Add(-store.StartedRetention))

	// A call 31 days later forgets the old keys but not the recent ones.
	mark("new", t0.Add(31*day))
	if !mark("mid", t0.Add(31*day)) {
		t.Error("mid (11 days old) was pruned")
	}
	if !mark("edge", t0.Add(31*day)) {
		t.Error("edge (exactly 30 days old) was pruned")
	}
	for i := range 5 {
		if mark(fmt.Sprintf("old-%d", i), t0.Add(31*day)) {
			t.Errorf("old-%d (31 days old) is still remembered", i)
		}
	}
	// Re-recorded just now, so remembered again.
	if !mark("old-0", t0.Add(31*day)) {
		t.Error("old-0 re-recorded but not remembered")
	}
}
