package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestPlayLogEventAndOffset(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	var entries []loa.PlayLogEntry
	for i := range 10 {
		ev := loa.PlayStarted
		if i%2 == 1 {
			ev = loa.PlayAired
		}
		entries = append(entries, loa.PlayLogEntry{Event: ev, SessionID: string(rune('a' + i))})
	}
	if err := db.AppendPlayLog(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	ids := func(f loa.PlayLogFilter) string {
		es, err := db.PlayLog(ctx, f, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, e := range es {
			out += e.SessionID
		}
		return out
	}
	if got := ids(loa.PlayLogFilter{Event: loa.PlayAired}); got != "jhfdb" {
		t.Errorf("aired: %q", got)
	}
	if got := ids(loa.PlayLogFilter{Event: loa.PlayAired, Offset: 2, Limit: 2}); got != "fd" {
		t.Errorf("aired, second page of 2: %q", got)
	}
	if got := ids(loa.PlayLogFilter{Offset: 8}); got != "ba" {
		t.Errorf("offset 8: %q", got)
	}
	if got := ids(loa.PlayLogFilter{Offset: 20}); got != "" {
		t.Errorf("past the end: %q", got)
	}
}
