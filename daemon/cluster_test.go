package daemon

import (
	"context"
	"encoding/json"
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

// testNoQuorumAfter is the test cluster's no_quorum threshold: above its
// elections (1–4 s here), below the default's 10 s of waiting.
const testNoQuorumAfter = 5 * time.Second

// clusterProc is one node of a test cluster, run as a real process.
type clusterProc struct {
	id                     string
	witness                bool
	data, http, mqtt, raft string
	cmd                    *exec.Cmd
}

func (p *clusterProc) spec() string {
	s := fmt.Sprintf("id=%s,raft=%s,api=http://%s,mqtt=tcp://%s", p.id, p.raft, p.http, p.mqtt)
	if p.witness {
		s += ",witness"
	}
	return s
}

func (p *clusterProc) start(t *testing.T, bin string, peers []string) {
	t.Helper()
	args := append([]string{"serve", "-data", p.data, "-http", p.http, "-mqtt-listen", p.mqtt,
		"-mqtt-pass", "test-controller", "-rtp", "127.0.0.1:0", "-log", "warn", "-https", "", "-mqtt-tls-listen", "",
		"-node-id", p.id, "-raft-bind", p.raft, "-cluster-no-quorum-after", testNoQuorumAfter.String()}, peers...)
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(p.data, fmt.Sprintf("serve-%d.log", time.Now().UnixNano()))
	log, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() { // what the node said, for the failure's cause
			b, _ := os.ReadFile(logPath)
			t.Logf("node %s's log:\n%s", p.id, b)
		}
	})
}

// adminToken is the admin token the node wrote when it first led.
func (p *clusterProc) adminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// role asks the node's /healthz: "leader" (the station's own answer),
// "follower", or "" when it does not answer.
func (p *clusterProc) role() (role, leader string) {
	c := http.Client{Timeout: time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + p.http + "/healthz")
	if err != nil {
		return "", ""
	}
	defer resp.Body.Close()
	var body struct {
		Role   string `json:"role"`
		Leader string `json:"leader"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.Role == "follower" {
		return "follower", body.Leader
	}
	return "leader", ""
}

// startCluster starts two controllers and a witness, and returns them and
// the leader.
func startCluster(t *testing.T) ([]*clusterProc, *clusterProc) {
	t.Helper()
	bin := buildLoa(t)
	nodes := []*clusterProc{{id: "n1"}, {id: "n2"}, {id: "w", witness: true}}
	for _, p := range nodes {
		p.data = t.TempDir()
		p.http = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
		p.mqtt = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
		p.raft = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	}
	peers := peerArgs(nodes)
	for _, p := range nodes {
		p.start(t, bin, peers)
	}
	return nodes, waitLeader(t, nodes, nil)
}

// waitLeader waits until one controller node (not gone, not the witness)
// serves as the station and the others follow it.
func waitLeader(t *testing.T, nodes []*clusterProc, gone *clusterProc) *clusterProc {
	t.Helper()
	var lead *clusterProc
	loatest.Eventually(t, 60*time.Second, func() bool {
		lead = nil
		for _, p := range nodes {
			if p == gone {
				continue
			}
			if r, _ := p.role(); r == "leader" {
				if lead != nil || p.witness {
					return false
				}
				lead = p
			}
		}
		return lead != nil
	}, "a controller node to lead the cluster")
	return lead
}

func clusterFence(t *testing.T, c *api.Client) api.ClusterFence {
	t.Helper()
	var st api.ClusterStatus
	loatest.Eventually(t, 10*time.Second, func() bool {
		return c.JSON(context.Background(), "GET", "/api/v1/cluster", nil, &st) == nil && st.Fence != nil
	}, "the cluster's status with the leader's fence")
	return *st.Fence
}

// TestClusterFailover runs two controllers and a witness as real
// processes (Raft over loopback TCP) and takes the leader down twice in
// the middle of one programme: first with SIGKILL (the kernel resets its
// connections), then, once the killed node is back as a follower, the new
// leader is frozen with SIGSTOP (no reset: receivers notice by keep-alive)
// and thawed after the other controller took over. Each time the other
// controller leads, every receiver moves to its broker and continues the
// programme at its timeline position; nothing is played twice (the
// receivers' own records), so the thawed old leader made no receiver play;
// and the session ends normally.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs three controller processes")
	}
	ctx := context.Background()
	nodes, lead := startCluster(t)
	token := lead.adminToken(t)
	// A follower answers reads itself and sends changes to the leader:
	// the set-up below goes through it.
	var follower *clusterProc
	for _, p := range nodes {
		if p != lead && !p.witness {
			follower = p
		}
	}
	c := api.NewClient("http://"+follower.http, token)
	fence := clusterFence(t, api.NewClient("http://"+lead.http, token)) // only the leader has one
	// Every node holds the first leader's CA and station key, so
	// receivers trust whichever leads.
	for _, name := range []string{"station.key", "tls/ca.crt", "tls/ca.key"} {
		want, err := os.ReadFile(filepath.Join(lead.data, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range nodes {
			loatest.Eventually(t, 30*time.Second, func() bool {
				got, err := os.ReadFile(filepath.Join(p.data, name))
				return err == nil && string(got) == string(want)
			}, fmt.Sprintf("node %s to hold the leader's %s", p.id, name))
		}
	}
	checkFollowerConsole(t, follower, lead, token)

	c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	var cfgs []firmwaresim.Config
	for i := range 3 {
		id := fmt.Sprintf("rx-%d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		// Every receiver is given both controllers' brokers, the
		// follower's first: it refuses them (CONNACK 3) while it follows.
		cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: "tcp://" + follower.mqtt,
			Brokers: []string{"tcp://" + lead.mqtt}, KeepAlive: 2 * time.Second, Decode: true, Logger: testLogger(t)})
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := c.WaitOnline(ctx, len(cfgs), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, api: c, byArea: map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}}
	med := s.upload(testSignal(24*time.Second), 48000)
	// The upload returned once a quorum held its bytes: the leader and at
	// least one other node (the witness keeps a full store too).
	copies := 0
	for _, p := range nodes {
		if _, err := os.Stat(filepath.Join(p.data, "media", med.Hash+".opus")); err == nil {
			copies++
		}
	}
	if copies < 2 {
		t.Errorf("the media file is on %d nodes after its upload, want a quorum (2 of 3)", copies)
	}
	sess := s.play(med.ID, "a")
	waitParts(t, fleet, sess.ID, 1, 100)

	// SIGKILL: the follower leads, with a higher fence.
	if err := lead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	lead.cmd.Wait()
	next := waitLeader(t, nodes, lead)
	t.Logf("%s leads %v after %s was killed", next.id, time.Since(killed).Round(time.Millisecond), lead.id)
	if next != follower {
		t.Fatalf("node %s leads after %s died, want %s", next.id, lead.id, follower.id)
	}
	fence = higherFence(t, c, fence)
	waitParts(t, fleet, sess.ID, 2, 50)

	// The killed node comes back as a follower and catches up; then the
	// leader freezes.
	lead.start(t, buildLoa(t), peerArgs(nodes))
	loatest.Eventually(t, 30*time.Second, func() bool { r, l := lead.role(); return r == "follower" && l == next.id }, "the restarted node to follow")
	if err := next.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	third := waitLeader(t, nodes, next)
	t.Logf("%s leads %v after %s froze", third.id, time.Since(frozen).Round(time.Millisecond), next.id)
	c3 := api.NewClient("http://"+third.http, token)
	s.api = c3
	fence = higherFence(t, c3, fence)
	waitParts(t, fleet, sess.ID, 3, 25)
	// Thawed, the old leader learns it was deposed; until then its
	// streams and plays carry a lower fence, which receivers refuse.
	if err := next.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, 60*time.Second, func() bool { r, _ := next.role(); return r == "follower" }, "the thawed node to follow")

	var st api.ClusterStatus
	if err := c3.JSON(ctx, "GET", "/api/v1/cluster", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Leader != third.id || len(st.Servers) != 3 || !slices.ContainsFunc(st.Servers, func(s api.ClusterServer) bool { return s.ID == "w" && s.Witness }) {
		t.Errorf("cluster status %+v: want %s leading three nodes, w the witness", st, third.id)
	}

	end := s.finish(sess, med.Duration, "a")
	if end.State != loa.SessionEnded {
		t.Errorf("after two failovers the session is %s (%s), want ended", end.State, end.Reason)
	}
	// The delivery report completes across both failovers: every receiver
	// finished, with what it played; read from a follower's copy.
	var report struct {
		Totals    loa.DeliveryTotals     `json:"totals"`
		Receivers []loa.ReceiverDelivery `json:"receivers"`
	}
	loatest.Eventually(t, 30*time.Second, func() bool {
		return api.NewClient("http://"+next.http, token).JSON(ctx, "GET", "/api/v1/sessions/"+sess.ID+"/delivery", nil, &report) == nil &&
			report.Totals.Finished == len(cfgs)
	}, "the delivery report, on a follower, to show every receiver finished")
	for _, d := range report.Receivers {
		if d.Played == 0 || d.StartedAt.IsZero() {
			t.Errorf("delivery of %s: %+v, want its frames played and when it started", d.Device, d)
		}
	}
	for _, r := range fleet.Receivers() {
		var heard uint64
		var parts []firmwaresim.SessionStats
		for _, st := range r.Sessions() {
			if st.Session == sess.ID {
				heard += st.FromPacket()
				parts = append(parts, st)
			}
		}
		if len(parts) < 3 {
			t.Errorf("%s did not continue the programme under each new leader (%d parts)", r.ID(), len(parts))
		}
		if heard > uint64(med.Frames) {
			t.Errorf("%s heard %d frames of a %d-frame programme: played twice", r.ID(), heard, med.Frames)
		}
		if r.Broker() != "tcp://"+third.mqtt {
			t.Errorf("%s is on broker %s, want the last leader's %s", r.ID(), r.Broker(), third.mqtt)
		}
		var gaps []time.Duration
		for i := 1; i < len(parts); i++ {
			gaps = append(gaps, parts[i].FirstPlayed.Sub(parts[i-1].Ended).Round(time.Millisecond))
		}
		t.Logf("%s heard %d of %d frames in %d parts (%v of audio missing in all); gaps %v (killed, frozen) from a part's end to the next's start; %d packets refused",
			r.ID(), heard, med.Frames, len(parts), time.Duration(uint64(med.Frames)-min(heard, uint64(med.Frames)))*20*time.Millisecond, gaps, parts[len(parts)-1].AuthFailures)
	}
	checkReadsWithoutLeader(t, nodes, token)
}

// checkReadsWithoutLeader freezes both controllers: the witness alone has
// no quorum and no leader, yet still shows the station's records, and
// refuses a change in words. Thawed after longer than an election, the
// controllers elect a leader again, which records the period without one
// (no_quorum, raised and cleared) from the witness's account.
func checkReadsWithoutLeader(t *testing.T, nodes []*clusterProc, token string) {
	t.Helper()
	var witness *clusterProc
	frozen := time.Now()
	for _, p := range nodes {
		if p.witness {
			witness = p
			continue
		}
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	w := api.NewClient("http://"+witness.http, token)
	ctx := context.Background()
	var me struct {
		Station struct{ Cluster api.ClusterRole } `json:"station"`
	}
	loatest.Eventually(t, 30*time.Second, func() bool {
		return w.JSON(ctx, "GET", "/api/v1/me", nil, &me) == nil && me.Station.Cluster.Leader == ""
	}, "the witness to know no leader")
	var areas []loa.Area
	if err := w.JSON(ctx, "GET", "/api/v1/areas", nil, &areas); err != nil || len(areas) == 0 {
		t.Errorf("without a leader the witness lists %d areas (%v), want the station's", len(areas), err)
	}
	err := w.CreateArea(ctx, loa.Area{ID: "x", Name: "X", Kind: loa.AreaProvince})
	if ce, ok := err.(*api.ClientError); !ok || ce.Status != http.StatusServiceUnavailable || !strings.Contains(ce.Message, "no leader") {
		t.Errorf("a change without a leader: %v, want 503 saying no leader is known", err)
	}

	time.Sleep(time.Until(frozen.Add(testNoQuorumAfter + 2*time.Second)))
	for _, p := range nodes {
		if !p.witness {
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	lead := waitLeader(t, nodes, nil)
	var alarms []loa.Alarm
	loatest.Eventually(t, 30*time.Second, func() bool {
		err := api.NewClient("http://"+lead.http, token).JSON(ctx, "GET", "/api/v1/alarms?kind="+loa.AlarmNoQuorum, nil, &alarms)
		return err == nil && len(alarms) > 0 && !alarms[0].ClearedAt.IsZero() // raised, then cleared at once
	}, "the new leader to record the period without a leader (no_quorum, raised and cleared)")
	if a := alarms[0]; a.Value < testNoQuorumAfter.Seconds() || !strings.Contains(a.Msg, "seen by node "+witness.id) {
		t.Errorf("no_quorum %+v: want over %v, seen by the witness", a, testNoQuorumAfter)
	}
}

// peerArgs is every node's -cluster-peer flag.
func peerArgs(nodes []*clusterProc) []string {
	var out []string
	for _, p := range nodes {
		out = append(out, "-cluster-peer", p.spec())
	}
	return out
}

// higherFence waits for the leader's fence and checks it is above old.
func higherFence(t *testing.T, c *api.Client, old api.ClusterFence) api.ClusterFence {
	t.Helper()
	f := clusterFence(t, c)
	if f.Gen <= old.Gen || f.Term < old.Term {
		t.Errorf("the new leader's fence %+v is not above the old one's %+v", f, old)
	}
	return f
}

// waitParts waits until every receiver plays the session in its n-th part
// (one per controller that streamed it) and has played frames of it.
func waitParts(t *testing.T, fleet *firmwaresim.Fleet, session string, n int, frames uint64) {
	t.Helper()
	for _, r := range fleet.Receivers() {
		loatest.Eventually(t, 60*time.Second, func() bool {
			var parts []firmwaresim.SessionStats
			for _, st := range r.Sessions() {
				if st.Session == session {
					parts = append(parts, st)
				}
			}
			return len(parts) >= n && parts[n-1].Played >= frames
		}, fmt.Sprintf("%s plays part %d of %s", r.ID(), n, session))
	}
}
