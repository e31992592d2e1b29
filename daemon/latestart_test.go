package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// daemonProc is a controller run as a real process on a data dir, with
// fixed addresses so its receivers find it again after a restart.
type daemonProc struct {
	t                  *testing.T
	bin, data          string
	httpAddr, mqttAddr string
}

func newDaemonProc(t *testing.T, bin string) *daemonProc {
	return &daemonProc{t: t, bin: bin, data: t.TempDir(),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp")),
		mqttAddr: fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))}
}

// serve starts the controller and waits until it answers /healthz.
func (d *daemonProc) serve() *exec.Cmd {
	d.t.Helper()
	cmd := exec.Command(d.bin, "serve", "-data", d.data, "-http", d.httpAddr, "-mqtt-listen", d.mqttAddr,
		"-mqtt-pass", "test-controller", "-rtp", "127.0.0.1:0", "-lead", "2s", "-log", "warn",
		"-https", "", "-mqtt-tls-listen", "") // no fixed ports: the cases run at once
	logPath := filepath.Join(d.data, fmt.Sprintf("serve-%d.log", time.Now().UnixNano()))
	log, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if d.t.Failed() {
			out, _ := os.ReadFile(logPath)
			d.t.Logf("controller log:\n%s", out)
		}
	})
	loatest.Eventually(d.t, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + d.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "the controller answers /healthz")
	return cmd
}

// station connects to the served controller with its admin token and
// provisions n receivers on it, powered off (not closed) at the end: a
// receiver's orderly close can wait seconds on its outbox after a
// reconnect.
func (d *daemonProc) station(n int) (*api.Client, *firmwaresim.Fleet) {
	d.t.Helper()
	tok, err := os.ReadFile(filepath.Join(d.data, "admin-token"))
	if err != nil {
		d.t.Fatal(err)
	}
	c := api.NewClient("http://"+d.httpAddr, strings.TrimSpace(string(tok)))
	fleet := provisionFleet(d.t, c, "tcp://"+d.mqttAddr, n, false)
	d.t.Cleanup(func() {
		for _, r := range fleet.Receivers() {
			r.Kill()
		}
	})
	return c, fleet
}

func (d *daemonProc) kill(cmd *exec.Cmd) {
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		d.t.Fatal(err)
	}
	cmd.Wait()
}

// TestSystemKillBeforeScheduledStart kills the controller (SIGKILL) 1 s,
// 3 s and 10 s before a scheduled programme and starts it again just
// after the programme's time, within the grace window. The restarted
// controller waits for its receivers to reconnect, every receiver plays
// the programme whole, from its beginning (nothing had aired: 1 s before
// is inside the 2 s pre-roll, so the session was already launched), and
// the play log lists no receiver as playing that did not play.
func TestSystemKillBeforeScheduledStart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the controller binary")
	}
	bin := buildLoa(t)
	for _, before := range []time.Duration{time.Second, 3 * time.Second, 10 * time.Second} {
		t.Run(fmt.Sprintf("%v before", before), func(t *testing.T) {
			t.Parallel() // each its own controller, data dir and ports
			t0 := time.Now()
			d := newDaemonProc(t, bin)
			first := d.serve()
			c, fleet := d.station(2)
			s := &system{t: t, api: c, byArea: map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}}
			med := s.upload(testSignal(2*time.Second), 48000)
			at := time.Now().Add(before + 2*time.Second).Truncate(time.Second).Add(time.Second)
			s.createSchedule("bantin", med.ID, at, nil)

			time.Sleep(time.Until(at.Add(-before))) // the fault is at a moment of the wall clock
			d.kill(first)
			time.Sleep(time.Until(at.Add(300 * time.Millisecond)))
			d.serve()
			t.Logf("restarted %v after the start; set up in %v", time.Since(at).Round(time.Millisecond), at.Add(-before).Sub(t0).Round(time.Millisecond))
			var sess *loa.Session
			loatest.Eventually(t, 20*time.Second, func() bool {
				var all []*loa.Session
				if err := c.JSON(context.Background(), "GET", "/api/v1/sessions", nil, &all); err != nil {
					t.Fatal(err)
				}
				for _, x := range all {
					if x.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: "bantin"}) {
						sess = x
						return true
					}
				}
				return false
			}, "the missed programme starts after the restart")
			end := s.finish(sess, med.Duration, "a")
			t.Logf("finished %v after its time", time.Since(at).Round(time.Millisecond))
			if end.State != loa.SessionEnded {
				t.Errorf("session %s (%s), want ended", end.State, end.Reason)
			}
			for _, r := range fleet.Receivers() {
				var heard uint64
				for _, st := range r.Sessions() {
					if st.Session == sess.ID {
						heard += st.FromPacket()
					}
				}
				// Whole: from its beginning, and once. A few frames may be
				// concealed on the way; two seconds (100 frames) may not.
				if heard+5 < uint64(med.Frames) || heard > uint64(med.Frames) {
					t.Errorf("%s heard %d frames of the %d-frame programme, want it whole from its beginning", r.ID(), heard, med.Frames)
				}
			}
			played := map[string]bool{}
			for _, r := range fleet.Receivers() {
				if st, ok := r.Session(sess.ID); ok && !st.FirstPlayed.IsZero() {
					played[r.ID()] = true
				}
			}
			for _, e := range s.playLog("") {
				if e.SessionID != sess.ID && e.ScheduleID != "bantin" {
					continue
				}
				t.Logf("play log: %s %v %s", e.Event, e.Devices, e.Detail)
				if !slices.Contains([]string{loa.PlayStarted, loa.PlayResumed, loa.PlayAired, loa.PlayEnded}, e.Event) {
					t.Errorf("play log %s %v (%s): want the programme started, aired and ended", e.Event, e.Devices, e.Detail)
				}
				for _, dev := range e.Devices {
					if !played[dev] {
						t.Errorf("play log %s for %s, which never played it", e.Event, dev)
					}
				}
			}
		})
	}
}
