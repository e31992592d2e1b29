package daemon

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// deliveryReply is GET /api/v1/sessions/{id}/delivery.
type deliveryReply struct {
	SessionID  string                 `json:"session_id"`
	Totals     loa.DeliveryTotals     `json:"totals"`
	Receivers  []loa.ReceiverDelivery `json:"receivers"`
	NextCursor string                 `json:"next_cursor"`
}

func (s *system) delivery(id, query string) deliveryReply {
	s.t.Helper()
	var out deliveryReply
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/sessions/"+id+"/delivery"+query, nil, &out); err != nil {
		s.t.Fatalf("delivery of %s: %v", id, err)
	}
	return out
}

// waitDelivered waits until session id's report is settled and written.
func (s *system) waitDelivered(id string) map[string]loa.ReceiverDelivery {
	s.t.Helper()
	var d deliveryReply
	loatest.Eventually(s.t, 30*time.Second, func() bool {
		d = s.delivery(id, "")
		return d.Totals.Queued+d.Totals.Acked+d.Totals.Started == 0 && s.m.Sessions.Following() == 0
	}, "session "+id+"'s delivery report settles")
	out := map[string]loa.ReceiverDelivery{}
	for _, l := range d.Receivers {
		out[l.Device] = l
	}
	return out
}

// matchesReceivers checks a settled report against the receivers' own
// records: every line in state, with the stats of its finished event, or,
// for quiet (no events), started and finished on its RTCP reports.
func matchesReceivers(t *testing.T, lines map[string]loa.ReceiverDelivery, id, state string, rs []*firmwaresim.Receiver, quiet *firmwaresim.Receiver) {
	t.Helper()
	if len(lines) != len(rs) {
		t.Errorf("%d lines, want %d: %+v", len(lines), len(rs), lines)
	}
	for _, r := range rs {
		st, _ := r.Session(id)
		l := lines[r.ID()]
		if l.State != state || l.Reason != "" || l.AckedAt.IsZero() || l.StartedAt.IsZero() || l.EndedAt.IsZero() {
			t.Errorf("%s: %+v, want %s with its times", r.ID(), l, state)
		}
		if st.Played == 0 {
			t.Errorf("%s played nothing of %s: %+v", r.ID(), id, st)
		}
		if r == quiet {
			if l.Evidence != loa.EvidenceRTCP || l.RTPReceived == 0 || l.RTPReceived > st.Received+st.Lost || l.Played != 0 {
				t.Errorf("%s (no events): %+v, want its evidence from RTCP, ≤ %d packets received", r.ID(), l, st.Received+st.Lost)
			}
			continue
		}
		if l.Evidence != loa.EvidenceEvent || l.Played != st.Played || l.Lost != st.Lost || l.Silence != st.Silence {
			t.Errorf("%s: %+v, want its evidence from its events and its own stats (played %d, lost %d, silence %d)",
				r.ID(), l, st.Played, st.Lost, st.Silence)
		}
	}
}

// TestSystemSessionDelivery: a manual and a scheduled session get a report
// matching the receivers' own records, one of which sends no events (its
// RTCP reports tell it played, and its play log line says aired); the
// report pages and filters; a session an operator stops reads stopped; an
// alert's session has its report too, agreeing with the alert's.
func TestSystemSessionDelivery(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	a, b := s.byArea["a"], s.byArea["b"]
	quiet := a[1]
	quiet.MuteEvents(true)
	med := s.upload(testSignal(2*time.Second), 48000)
	want := []string{a[0].ID(), a[1].ID()}
	slices.Sort(want)

	manual := s.play(med.ID, "a")
	s.finish(manual, med.Duration, "a")
	matchesReceivers(t, s.waitDelivered(manual.ID), manual.ID, loa.DeliveryFinished, a, quiet)
	if got := s.airedDevices(manual.ID); !slices.Equal(got, want) {
		t.Errorf("aired for %v, want %v (the quiet one on its RTCP)", got, want)
	}
	for _, e := range s.playLog("") {
		session := e.Event == loa.PlayStarted || e.Event == loa.PlayEnded || e.Event == loa.PlayStopped || e.Event == loa.PlayResumed
		if e.SessionID == manual.ID && (session && len(e.Devices) > 0 || !session && e.Event != loa.PlayAired) {
			t.Errorf("play log %s names %v: the session's lines name no receiver, and every receiver played it", e.Event, e.Devices)
		}
	}

	// Paged, and filtered by state; the totals count every receiver.
	page := s.delivery(manual.ID, "?limit=1")
	if len(page.Receivers) != 1 || page.Receivers[0].Device != want[0] || page.NextCursor != want[0] || page.Totals.Finished != 2 {
		t.Errorf("first page %+v, want %s and a cursor, totals of 2 finished", page, want[0])
	}
	page = s.delivery(manual.ID, "?limit=1&cursor="+page.NextCursor)
	if len(page.Receivers) != 1 || page.Receivers[0].Device != want[1] || page.NextCursor != "" {
		t.Errorf("second page %+v, want %s and no cursor", page, want[1])
	}
	if page = s.delivery(manual.ID, "?state=failed"); len(page.Receivers) != 0 || page.Totals.Receivers != 2 {
		t.Errorf("failed %+v, want none of 2", page)
	}

	at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("bantin", med.ID, at, nil)
	sched := s.waitScheduled("bantin", 30*time.Second)
	s.finish(sched, med.Duration, "a")
	matchesReceivers(t, s.waitDelivered(sched.ID), sched.ID, loa.DeliveryFinished, a, quiet)

	stop := s.play(med.ID, "b")
	for _, r := range b {
		loatest.Eventually(t, 20*time.Second, func() bool { st, ok := r.Session(stop.ID); return ok && st.Played >= 20 },
			fmt.Sprintf("%s plays the session", r.ID()))
	}
	if err := s.api.StopSession(context.Background(), stop.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range b {
		loatest.Eventually(t, 20*time.Second, func() bool { st, ok := r.Session(stop.ID); return ok && st.Done },
			fmt.Sprintf("%s ends the stopped session", r.ID()))
	}
	matchesReceivers(t, s.waitDelivered(stop.ID), stop.ID, loa.DeliveryStopped, b, nil)

	// An alert's session has the same report, and its alert's agrees.
	al, err := s.sendAlert(map[string]any{"level": loa.AlertPriority, "content": map[string]any{"media_id": med.ID},
		"targets": map[string][]string{"areas": {"b"}}, "expires_in": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	fin := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.Final() })
	matchesReceivers(t, s.waitDelivered(al.SessionID), al.SessionID, loa.DeliveryFinished, b, nil)
	for _, r := range b {
		if d := delivery(fin, r.ID()); d.State != loa.DeliveryFinished {
			t.Errorf("%s: alert report %+v, want finished as its session's report", r.ID(), d)
		}
	}
}
