package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestPutSession_InsertAndUpdate(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	s := &loa.Session{
		ID: "s1", MediaID: "m1", Priority: loa.PriorityEmergency, MaxDuration: time.Hour, SSRC: 0xdeadbeef,
		Targets: loa.Targets{Areas: []string{"qn"}, Devices: []string{"rx-1"}},
		State:   loa.SessionPlaying, Devices: []string{"rx-1", "rx-2"}, StartedAt: start, CreatedBy: "admin",
	}
	if err := db.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("Session = %+v, want %+v", got, s)
	}

	s.State, s.EndedAt, s.Reason = loa.SessionStopped, start.Add(time.Minute), "operator"
	if err := db.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Session(ctx, "s1")
	if got.State != loa.SessionStopped || !got.EndedAt.Equal(s.EndedAt) || got.Reason != "operator" {
		t.Fatalf("after update Session = %+v", got)
	}

	// Mutating the returned slices does not reach the db.
	got.Devices[0] = "changed"
	if again, _ := db.Session(ctx, "s1"); again.Devices[0] != "rx-1" {
		t.Fatalf("returned session aliases stored data: %v", again.Devices)
	}
}

func TestPutSession_Errors(t *testing.T) {
	db := mustOpen(t)
	err := db.PutSession(context.Background(), &loa.Session{MediaID: "m1"})
	wantCode(t, err, loa.EINVALID)
	wantMessage(t, err, "id")
}

func TestSession_NotFound(t *testing.T) {
	db := mustOpen(t)
	_, err := db.Session(context.Background(), "nope")
	wantCode(t, err, loa.ENOTFOUND)
}

func TestSessions_NewestFirst(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	// Ids in the opposite order to start times, so key order is not enough.
	for i, id := range []string{"c", "b", "a"} {
		if err := db.PutSession(ctx, &loa.Session{ID: id, StartedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := db.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 || ss[0].ID != "a" || ss[1].ID != "b" || ss[2].ID != "c" {
		t.Fatalf("Sessions order: %v", ss)
	}
}

// The first packet's time is kept once, and keeps the rest of the record.
func TestMarkSessionSent(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	s := &loa.Session{ID: "s1", MediaID: "m1", State: loa.SessionPlaying, StartedAt: start, StoppedBy: "tok-1"}
	if err := db.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{start.Add(time.Second), start.Add(time.Minute)} {
		if err := db.MarkSessionSent(ctx, "s1", at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstSentAt.Equal(start.Add(time.Second)) || got.StoppedBy != "tok-1" || got.State != loa.SessionPlaying {
		t.Errorf("after MarkSessionSent: %+v; want first sent at %v, the rest kept", got, start.Add(time.Second))
	}
	if err := db.MarkSessionSent(ctx, "nope", start); err != nil {
		t.Errorf("MarkSessionSent of no session: %v, want nothing done", err)
	}
	wantCode(t, db.MarkSessionSent(ctx, "", start), loa.EINVALID)
}
