package station_test

import (
	"context"
	"slices"
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

// notify sets a receiver's presence and boot, and tells the
// subscribers, as the fleet does on a status or a Will.
func (f *fakeFleet) notify(id string, on bool, boot uint64) {
	f.mu.Lock()
	f.online[id] = on
	if f.boot == nil {
		f.boot = map[string]uint64{}
	}
	f.boot[id] = boot
	fns := make([]func(loa.DeviceState), 0, len(f.presence))
	for _, fn := range f.presence {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	st, _ := f.DeviceState(id)
	for _, fn := range fns {
		fn(st)
	}
}

// alertSessions returns the sessions the engine was asked to start that
// carry device.
func (w *world) alertSessions(device string) []*loa.Session {
	var out []*loa.Session
	for _, sess := range w.engine.sessions() {
		if slices.Contains(sess.Devices, device) {
			out = append(out, sess)
		}
	}
	return out
}

// TestAlertResumedAfterRestart: the controller is killed during an alert
// (its session stays "playing" in the store). At the next start the alert
// goes on: the receiver that played it through before the kill (its
// finished event handled, the alert's report not yet written: its
// session's stored line says so) stays finished; every other one gets the
// whole alert from its beginning in a late session once it is online;
// the old session is closed, not resumed; cancelling still works.
func TestAlertResumedAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2", "d3"), "d1", "d2", "d3", "d4")
		a := w.sendAlert([]string{"d1", "d2", "d3", "d4"}, time.Minute)
		synctest.Wait()
		w.fleet.send("d1", played(a.SessionID))
		w.fleet.send("d3", played(a.SessionID))
		w.fleet.send("d3", finished(a.SessionID, 50))
		synctest.Wait()
		if stored, err := w.db.Alert(ctx, a.ID); err != nil || stored.Report[2].State == loa.DeliveryFinished {
			t.Fatalf("stored before the kill: %+v, %v; want d3 not yet finished in the alert's record", stored, err)
		}
		w.stop() // killed: no shutdown outcome, the session stays playing

		fleet := newFleet() // the receivers reconnect after the restart
		w2 := newWorld(t, w.dir, fleet)
		got, rep := w2.report(a.ID)
		if got.State != loa.AlertActive {
			t.Fatalf("alert %s (%q) after the restart, want active: it has not expired", got.State, got.Reason)
		}
		wantDelivery(t, rep["d3"], loa.DeliveryFinished, "")
		for _, d := range []string{"d1", "d2", "d4"} {
			wantDelivery(t, rep[d], loa.DeliveryQueued, loa.ReasonOffline)
		}
		sess, err := w2.db.Session(ctx, a.SessionID)
		if err != nil || sess.State != loa.SessionStopped || sess.Reason != "controller restarted" {
			t.Fatalf("alert session after the restart: %+v, %v; want stopped (controller restarted)", sess, err)
		}
		w2.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
		if n := len(w2.engine.sessions()); n != 0 {
			t.Fatalf("%d sessions started before any receiver is back, want none", n)
		}

		fleet.notify("d1", true, 0)
		fleet.notify("d2", true, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		started := w2.engine.sessions()
		if len(started) != 1 || !slices.Equal(started[0].Devices, []string{"d1", "d2"}) || started[0].ID == a.SessionID ||
			started[0].Origin != (loa.Origin{Kind: loa.OriginAlert, ID: a.ID}) {
			t.Fatalf("sessions after d1 and d2 came back: %+v; want one new session of the alert to both", started)
		}
		late := started[0]
		w2.fleet.send("d1", played(late.ID))
		time.Sleep(time.Second)
		w2.fleet.send("d1", finished(late.ID, 50))
		w2.engine.end(late.ID, loa.SessionEnded, "")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got, rep = w2.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		if !rep["d1"].Late || rep["d1"].Repeats != 1 {
			t.Errorf("d1: %+v, want finished late, its 1 repeat", rep["d1"])
		}
		wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonNoStream)
		wantDelivery(t, rep["d4"], loa.DeliveryQueued, loa.ReasonOffline)
		if got.State != loa.AlertActive {
			t.Fatalf("alert %s with d4 still waiting, want active", got.State)
		}

		if err := w2.alerts.CancelAlert(ctx, a.ID, "nhầm"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		stored, err := w2.db.Alert(ctx, a.ID)
		if err != nil || stored.State != loa.AlertCancelled {
			t.Fatalf("stored alert %+v, %v; want cancelled", stored, err)
		}
		for _, d := range stored.Report {
			rep[d.Device] = d
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		wantDelivery(t, rep["d3"], loa.DeliveryFinished, "")
		wantDelivery(t, rep["d4"], loa.DeliveryFailed, loa.ReasonCancelled)
	})
}

// TestAlertExpiredDuringRestart: an alert whose expiry passed while the
// controller was down is closed as expired at the next start; nothing
// is sent.
func TestAlertExpiredDuringRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, "", newFleet("d1"), "d1", "d2")
		a := w.sendAlert([]string{"d1", "d2"}, time.Minute)
		synctest.Wait()
		w.stop()
		time.Sleep(2 * time.Minute)
		w2 := newWorld(t, w.dir, newFleet("d1", "d2"))
		time.Sleep(time.Second)
		synctest.Wait()
		got, rep := w2.report(a.ID)
		if got.State != loa.AlertExpired {
			t.Errorf("alert %s (%q), want expired", got.State, got.Reason)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonExpiredHere)
		wantDelivery(t, rep["d2"], loa.DeliveryFailed, loa.ReasonOffline)
		if n := len(w2.engine.sessions()); n != 0 {
			t.Errorf("%d sessions started for an expired alert", n)
		}
	})
}

// TestAlertReceiverLostPlayResent: a receiver rebooted mid-alert (back
// with a new boot while the alert still plays), and one that went offline
// and came back (same boot) whose play settled partial, each get the
// whole alert again in a late session, and are finished on its evidence;
// one that played it through is not sent it again.
func TestAlertReceiverLostPlayResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1", "d2", "d3")
		w := newWorld(t, "", fleet, "d1", "d2", "d3")
		for _, d := range []string{"d1", "d2", "d3"} {
			fleet.notify(d, true, 1)
		}
		a := w.sendAlert([]string{"d1", "d2", "d3"}, 2*time.Minute)
		synctest.Wait()
		for _, d := range []string{"d1", "d2", "d3"} {
			fleet.send(d, played(a.SessionID))
		}
		fleet.notify("d2", false, 1) // its Will
		fleet.notify("d2", true, 2)  // a new boot
		fleet.notify("d3", false, 1)
		fleet.notify("d3", true, 1) // the same boot: its link dropped
		time.Sleep(time.Second)
		fleet.send("d1", finished(a.SessionID, 50))
		fleet.send("d3", finished(a.SessionID, 30))
		w.engine.end(a.SessionID, loa.SessionEnded, "")
		time.Sleep(10 * time.Second)
		synctest.Wait()

		if n := len(w.alertSessions("d1")); n != 1 {
			t.Errorf("d1 played it through and was sent it %d times, want once", n)
		}
		for _, d := range []string{"d2", "d3"} {
			sessions := w.alertSessions(d)
			if len(sessions) != 2 {
				t.Fatalf("%s is in %d sessions, want the first and a late one", d, len(sessions))
			}
			late := sessions[1]
			fleet.send(d, played(late.ID))
			time.Sleep(time.Second)
			fleet.send(d, finished(late.ID, 50))
			w.engine.end(late.ID, loa.SessionEnded, "")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got, rep := w.report(a.ID)
		if got.State != loa.AlertFinished {
			t.Errorf("alert %s, want finished", got.State)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		for _, d := range []string{"d2", "d3"} {
			wantDelivery(t, rep[d], loa.DeliveryFinished, "")
			if !rep[d].Late {
				t.Errorf("%s: %+v, want late", d, rep[d])
			}
		}
	})
}

// TestAlertResendBounded: a receiver that reboots during every play of an
// alert is sent it again at most 3 times, then reported failed.
func TestAlertResendBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1")
		w := newWorld(t, "", fleet, "d1")
		boot := uint64(1)
		fleet.notify("d1", true, boot)
		a := w.sendAlert([]string{"d1"}, 5*time.Minute)
		synctest.Wait()
		for range 6 {
			sessions := w.alertSessions("d1")
			sid := sessions[len(sessions)-1].ID
			fleet.send("d1", played(sid))
			fleet.notify("d1", false, boot)
			boot++
			fleet.notify("d1", true, boot)
			w.engine.end(sid, loa.SessionEnded, "")
			time.Sleep(10 * time.Second)
			synctest.Wait()
		}
		if n := len(w.alertSessions("d1")); n != 4 {
			t.Errorf("d1 was sent the alert %d times, want 4 (once, then 3 times again)", n)
		}
		got, rep := w.report(a.ID)
		if got.State != loa.AlertFinished {
			t.Errorf("alert %s, want finished", got.State)
		}
		wantDelivery(t, rep["d1"], loa.DeliveryFailed, loa.ReasonPartial)
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
