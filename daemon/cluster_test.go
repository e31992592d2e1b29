package daemon

import (
	"context"
	"encoding/json"
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
		"-mqtt-pass", "test-controller", "-rtp", "127.0.0.1:0", "-log", "warn",
		"-node-id", p.id, "-raft-bind", p.raft}, peers...)
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
	var peers []string
	for _, p := range nodes {
		p.data = t.TempDir()
		p.http = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
		p.mqtt = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
		p.raft = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
		peers = append(peers, "-cluster-peer", p.spec())
	}
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
// processes (Raft over loopback TCP), plays a programme and kills the
// leader with SIGKILL in the middle of it: the other controller leads
// within the election timeout, every receiver moves to its broker and
// continues the programme at its timeline position, nothing is played
// twice (the receivers' own records), and the session ends normally.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs three controller processes")
	}
	ctx := context.Background()
	nodes, lead := startCluster(t)
	tok, err := os.ReadFile(filepath.Join(lead.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	// A follower sends the client to the leader (307), token and all.
	var follower *clusterProc
	for _, p := range nodes {
		if p != lead && !p.witness {
			follower = p
		}
	}
	c := api.NewClient("http://"+follower.http, token)
	fence1 := clusterFence(t, c)

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
			Brokers: []string{"tcp://" + lead.mqtt}, Decode: true, Logger: testLogger(t)})
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
	med := s.upload(testSignal(10*time.Second), 48000)
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
	waitPlaying(t, fleet, sess.ID, 100)

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
	if fence2 := clusterFence(t, c); fence2.Gen <= fence1.Gen || fence2.Term < fence1.Term {
		t.Errorf("the new leader's fence %+v is not above the old one's %+v", fence2, fence1)
	}

	end := s.finish(sess, med.Duration, "a")
	if end.State != loa.SessionEnded {
		t.Errorf("after the leader died the session is %s (%s), want ended", end.State, end.Reason)
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
			t.Errorf("%s did not continue the programme under the new leader (%d parts)", r.ID(), parts)
		}
		if heard > uint64(med.Frames) {
			t.Errorf("%s heard %d frames of a %d-frame programme: played twice", r.ID(), heard, med.Frames)
		}
		if r.Broker() != "tcp://"+follower.mqtt {
			t.Errorf("%s is on broker %s, want the new leader's", r.ID(), r.Broker())
		}
		var gap time.Duration
		var prevEnd, lastFirst time.Time
		for _, st := range r.Sessions() {
			if st.Session == sess.ID {
				if !prevEnd.IsZero() {
					gap = st.FirstPlayed.Sub(prevEnd)
				}
				prevEnd, lastFirst = st.Ended, st.FirstPlayed
			}
		}
		t.Logf("%s heard %d of %d frames in %d parts; the gap %v (first played %v after the kill)", r.ID(), heard, med.Frames, parts, gap.Round(time.Millisecond), lastFirst.Sub(killed).Round(time.Millisecond))
	}
}
