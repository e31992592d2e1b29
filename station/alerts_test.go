package station_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
)

// TestAlertDeliveryReport follows four receivers to the end of an alert:
// one plays it through, one acks and plays nothing, one refuses, one is
// offline until the alert expires.
func TestAlertDeliveryReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1", "d2", "d3")
		w := newWorld(t, "", fleet, "d1", "d2", "d3", "d4")
		fleet.answer("d3", func(context.Context) error { return loa.Errorf(loa.EINVALID, "busy") })
		a := w.sendAlert([]string{"d1", "d2", "d3", "d4"}, 2*time.Minute)
		synctest.Wait()

		_, rep := w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryAcked, "")
		wantDelivery(t, rep["d2"], loa.DeliveryAcked, "")
		wantDelivery(t, rep["d3"], loa.DeliveryFailed, loa.ReasonRefused)
		wantDelivery(t, rep["d4"], loa.DeliveryQueued, loa.ReasonOffline)

		fleet.send("d1", played(a.SessionID))
		time.Sleep(time.Second)
		fleet.send("d1", finished(a.SessionID, 50))
		w.engine.end(a.SessionID, loa.SessionEnded, "")
		synctest.Wait()
		_, rep = w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		if rep["d1"].Repeats != 1 || rep["d1"].StartedAt.IsZero() || rep["d1"].AckedAt.IsZero() {
			t.Errorf("d1: %+v, want 1 repeat with its ack and start times", rep["d1"])
		}
		wantDelivery(t, rep["d2"], loa.DeliveryAcked, "") // its reports may still come

		time.Sleep(5 * time.Second) // longer than the delay and the settling time
		synctest.Wait()
		a2, rep := w.report(a.ID)
		wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonNoStream)
		if a2.State != loa.AlertActive {
			t.Errorf("alert %s with d4 still waiting, want active", a2.State)
		}

		time.Sleep(2 * time.Minute)
		synctest.Wait()
		a3, rep := w.report(a.ID)
		if a3.State != loa.AlertExpired {
			t.Errorf("alert %s after its expiry, want expired", a3.State)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		wantDelivery(t, rep["d4"], loa.DeliveryFailed, loa.ReasonOffline)
		var tot loa.AlertTotals
		for i := range a3.Report {
			tot.Add(&a3.Report[i])
		}
		if want := (loa.AlertTotals{Receivers: 4, Finished: 1, Failed: 3}); tot != want {
			t.Errorf("totals %+v, want %+v", tot, want)
		}
		stored, err := w.db.Alert(context.Background(), a.ID)
		if err != nil || stored.State != loa.AlertExpired || len(stored.Report) != 4 {
			t.Fatalf("stored alert %+v, %v: want the final report", stored, err)
		}
		for _, d := range stored.Report {
			if d != rep[d.Device] {
				t.Errorf("stored %+v, reported %+v", d, rep[d.Device])
			}
		}
	})
}

// TestAlertAckAfterExpiry: a receiver whose ack arrives after the alert
// expired stays failed as expired, and so does one whose finished report
// comes too late.
func TestAlertAckAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1", "d2")
		w := newWorld(t, "", fleet, "d1", "d2")
		fleet.answer("d1", func(context.Context) error { time.Sleep(90 * time.Second); return nil })
		a := w.sendAlert([]string{"d1", "d2"}, time.Minute)
		synctest.Wait()
		fleet.send("d2", played(a.SessionID))

		time.Sleep(61 * time.Second)
		synctest.Wait()
		a1, rep := w.report(a.ID)
		if a1.State != loa.AlertExpired {
			t.Fatalf("alert %s after its expiry, want expired", a1.State)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonExpiredHere)
		wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonExpiredHere)
		w.engine.mu.Lock()
		reason := w.engine.stopped[a.SessionID]
		w.engine.mu.Unlock()
		if reason != "alert expired" {
			t.Errorf("session stopped with %q, want \"alert expired\"", reason)
		}

		time.Sleep(30 * time.Second) // d1's ack arrives
		fleet.send("d2", finished(a.SessionID, 50))
		synctest.Wait()
		_, rep = w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonExpiredHere)
		if !rep["d1"].AckedAt.IsZero() {
			t.Errorf("d1 acked at %v after the alert ended", rep["d1"].AckedAt)
		}
		wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonExpiredHere)
	})
}

// TestAlertCancelRacesFinish: a receiver's finished report and a cancel
// arriving together leave one consistent report: finished if its report
// came first, cancelled if the cancel did, never both or neither.
func TestAlertCancelRacesFinish(t *testing.T) {
	for _, order := range []string{"finish first", "cancel first", "together"} {
		t.Run(order, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fleet := newFleet("d1", "d2")
				w := newWorld(t, "", fleet, "d1", "d2")
				a := w.sendAlert([]string{"d1", "d2"}, time.Minute)
				synctest.Wait()
				fleet.send("d1", played(a.SessionID))
				time.Sleep(time.Second)
				finish := func() { fleet.send("d1", finished(a.SessionID, 50)) }
				cancel := func() {
					if err := w.alerts.CancelAlert(context.Background(), a.ID, "nhầm"); err != nil {
						t.Error(err)
					}
				}
				switch order {
				case "finish first":
					finish()
					cancel()
				case "cancel first":
					cancel()
					finish()
				default:
					go finish()
					go cancel()
				}
				synctest.Wait()
				time.Sleep(time.Second) // the final report is written
				synctest.Wait()

				stored, err := w.db.Alert(context.Background(), a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.State != loa.AlertCancelled || stored.Reason != "nhầm" {
					t.Errorf("alert %s (%q), want cancelled (nhầm)", stored.State, stored.Reason)
				}
				rep := map[string]loa.Delivery{}
				for _, d := range stored.Report {
					rep[d.Device] = d
				}
				wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonCancelled)
				d1 := rep["d1"]
				switch order {
				case "finish first":
					wantDelivery(t, d1, loa.DeliveryFinished, "")
				case "cancel first":
					wantDelivery(t, d1, loa.DeliveryFailed, loa.ReasonCancelled)
				default:
					if !(d1.State == loa.DeliveryFinished && d1.Reason == "") && !(d1.State == loa.DeliveryFailed && d1.Reason == loa.ReasonCancelled) {
						t.Errorf("d1: %s/%s, want finished or failed/cancelled", d1.State, d1.Reason)
					}
				}
				if len(w.engine.sessions()) != 1 {
					t.Errorf("%d sessions started, want 1", len(w.engine.sessions()))
				}
				w.engine.mu.Lock()
				_, stopped := w.engine.stopped[a.SessionID]
				w.engine.mu.Unlock()
				if !stopped {
					t.Error("the cancelled alert's session was not stopped")
				}
			})
		})
	}
}

// TestAlertRestartBetweenAckAndStart: the controller stops after a
// receiver acked and before it reported playing. At the next start the
// alert is closed as interrupted there, and its session is not resumed.
func TestAlertRestartBetweenAckAndStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1"), "d1")
		a := w.sendAlert([]string{"d1"}, time.Minute)
		synctest.Wait()
		time.Sleep(time.Second) // the acked report is written
		synctest.Wait()
		if stored, err := w.db.Alert(ctx, a.ID); err != nil || stored.Report[0].State != loa.DeliveryAcked {
			t.Fatalf("stored before the restart: %+v, %v; want d1 acked", stored, err)
		}
		// The engine's shutdown ends the session without ending the programme.
		w.engine.end(a.SessionID, loa.SessionStopped, loa.SessionShutdown)
		w.stop()

		w2 := newWorld(t, w.dir, newFleet("d1"))
		got, rep := w2.report(a.ID)
		if got.State != loa.AlertFinished || got.Reason != "controller restarted" {
			t.Errorf("alert %s (%q) after the restart, want finished (controller restarted)", got.State, got.Reason)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonInterrupted)
		sess, err := w2.db.Session(ctx, a.SessionID)
		if err != nil || sess.State != loa.SessionStopped || sess.Origin != (loa.Origin{Kind: loa.OriginAlert, ID: a.ID}) {
			t.Fatalf("alert session after the restart: %+v, %v; want stopped, origin the alert", sess, err)
		}
		w2.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
		if n := len(w2.engine.sessions()); n != 0 {
			t.Errorf("%d sessions resumed, want none: an alert is not replayed from its middle", n)
		}
		// A played report that was on its way changes nothing.
		w2.fleet.send("d1", played(a.SessionID))
		synctest.Wait()
		_, rep = w2.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonInterrupted)
	})
}

// TestAlertLateFinishedRevises: a receiver settled as partial whose
// finished report arrives after its session's delivery report settled
// (a congested broker) is finished in the alert's report, which reads its
// session's line; its session's stored line has the stats too.
func TestAlertLateFinishedRevises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1")
		w := newWorld(t, "", fleet, "d1", "d2") // d2 offline: the alert stays active
		a := w.sendAlert([]string{"d1", "d2"}, 5*time.Minute)
		synctest.Wait()
		fleet.send("d1", played(a.SessionID))
		time.Sleep(time.Second)
		w.engine.end(a.SessionID, loa.SessionEnded, "")
		time.Sleep(40 * time.Second) // past every settling wait
		synctest.Wait()
		_, rep := w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonPartial)
		lines, err := w.sessions.SessionDelivery(context.Background(), a.SessionID)
		if err != nil || len(lines) != 1 || !lines[0].Final() {
			t.Fatalf("session report %+v, %v: want d1's line settled", lines, err)
		}
		if d := rep["d1"]; !d.AckedAt.Equal(lines[0].AckedAt) || !d.StartedAt.Equal(lines[0].StartedAt) {
			t.Errorf("alert line %+v, session line %+v: want the same ack and start", d, lines[0])
		}

		fleet.send("d1", finished(a.SessionID, 50))
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		_, rep = w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		if rep["d1"].Repeats != 1 {
			t.Errorf("d1: %+v, want its 1 repeat", rep["d1"])
		}
		lines, err = w.sessions.SessionDelivery(context.Background(), a.SessionID)
		if err != nil || len(lines) != 1 || lines[0].Played != 50 {
			t.Errorf("session report %+v, %v: want d1's 50 frames", lines, err)
		}
	})
}
