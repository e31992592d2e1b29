package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestGroupCommand_PutGetAndSettleInterrupted(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	running := &loa.GroupCommand{
		ID: "g1", AreaID: "xa", Op: "volume", Args: json.RawMessage(`{"level":40}`), TimeoutMs: 5000,
		State: loa.GroupRunning, CreatedBy: "tok1", CreatedAt: at,
		Results: []loa.GroupResult{
			{Device: "rx-1", State: loa.GroupDoneAck, AckedAt: at.Add(time.Second)},
			{Device: "rx-2", State: loa.GroupPending},
			{Device: "rx-3", State: loa.GroupOffline, Msg: "offline"},
		},
	}
	running.Count()
	done := &loa.GroupCommand{ID: "g2", AreaID: "xa", Op: "mute", State: loa.GroupDone, CreatedAt: at,
		Results: []loa.GroupResult{{Device: "rx-1", State: loa.GroupFailed, Code: "invalid", Msg: "bad"}}}
	done.Count()
	for _, g := range []*loa.GroupCommand{running, done} {
		if err := db.PutGroupCommand(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.GroupCommand(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, running) {
		t.Fatalf("GroupCommand = %+v\nwant %+v", got, running)
	}
	if _, err := db.GroupCommand(ctx, "nope"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("missing group command: %v, want not found", err)
	}
	if err := db.PutGroupCommand(ctx, &loa.GroupCommand{ID: "a/b"}); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("bad id stored: %v", err)
	}

	n, err := db.SettleInterruptedGroupCommands(ctx, at.Add(time.Minute), "controller restarted")
	if err != nil || n != 1 {
		t.Fatalf("settled %d, %v; want 1", n, err)
	}
	got, _ = db.GroupCommand(ctx, "g1")
	if got.State != loa.GroupDone || !got.SettledAt.Equal(at.Add(time.Minute)) {
		t.Errorf("interrupted command not settled: %+v", got)
	}
	want := loa.GroupTotals{Done: 1, Timeout: 1, Offline: 1}
	if got.Totals != want || got.Results[1].State != loa.GroupTimeout || got.Results[1].Msg != "controller restarted" {
		t.Errorf("settled results %+v totals %+v, want rx-2 timeout and totals %+v", got.Results, got.Totals, want)
	}
	if got.Results[0].State != loa.GroupDoneAck || !got.Results[0].AckedAt.Equal(at.Add(time.Second)) {
		t.Errorf("a final result changed: %+v", got.Results[0])
	}
	g2, _ := db.GroupCommand(ctx, "g2")
	if !reflect.DeepEqual(g2, done) {
		t.Errorf("a settled command changed: %+v", g2)
	}
	if n, err := db.SettleInterruptedGroupCommands(ctx, at, "again"); err != nil || n != 0 {
		t.Errorf("second settle: %d, %v; want 0", n, err)
	}
}
