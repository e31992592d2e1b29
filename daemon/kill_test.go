package daemon

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// TestSystemKill9Resumes runs the controller as a real process, kills it
// with SIGKILL in the middle of a programme and starts it again: the
// programme resumes on its receivers and is not played twice.
func TestSystemKill9Resumes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the controller binary")
	}
	bin := buildLoa(t)
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	serve := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "-data", data, "-http", httpAddr, "-mqtt-listen", mqttAddr,
			"-mqtt-pass", "test-controller", "-rtp", "127.0.0.1:0", "-log", "warn")
		log, _ := os.Create(filepath.Join(data, fmt.Sprintf("serve-%d.log", time.Now().UnixNano())))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for i := 0; ; i++ {
			if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
				resp.Body.Close()
				return cmd
			}
			if i > 200 {
				t.Fatal("the controller never answered /healthz")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := serve()
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient("http://"+httpAddr, strings.TrimSpace(string(tok)))
	fleet := provisionFleet(t, c, "tcp://"+mqttAddr, 2, false)
	s := &system{t: t, api: c, byArea: map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}}
	med := s.upload(testSignal(8*time.Second), 48000)
	sess := s.play(med.ID, "a")
	waitPlaying(t, fleet, sess.ID, 75)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	serve()

	end := s.finish(sess, med.Duration, "a")
	if end.State != loa.SessionEnded {
		t.Errorf("after kill -9 and restart the session is %s (%s), want ended", end.State, end.Reason)
	}
	for _, r := range fleet.Receivers() {
		var heard uint64
		parts := 0
		for _, st := range r.Sessions() {
			if st.Session == sess.ID {
				heard += st.FromPacket()
				parts++
			}
		}
		if parts < 2 {
			t.Errorf("%s did not resume the programme after the restart (%d parts)", r.ID(), parts)
		}
		if heard > uint64(med.Frames) {
			t.Errorf("%s heard %d frames of a %d-frame programme: played twice", r.ID(), heard, med.Frames)
		}
	}
}
