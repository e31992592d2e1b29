package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
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
	"github.com/loa-broadcast/loa/media"
)

// TestClusterUploadWhileANodeIsDown: with the follower controller killed,
// a media upload on the leader commits (the leader and the witness are
// the quorum that holds its bytes) and is listed. The killed node, started
// again on the same data directory, pulls the file from the leader (the
// same bytes, under its content hash) and no blob_missing alarm stays
// active. Then it is made leader and plays the media to a receiver from
// its own copy: the pulled file is whole.
func TestClusterUploadWhileANodeIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs three controller processes")
	}
	t.Parallel() // its own nodes, data dirs and ports; mostly waiting
	began := time.Now()
	ctx := context.Background()
	nodes, lead := startCluster(t)
	token := lead.adminToken(t)
	var down, witness *clusterProc
	for _, p := range nodes {
		switch {
		case p.witness:
			witness = p
		case p != lead:
			down = p
		}
	}
	c := api.NewClient("http://"+lead.http, token)
	clusterFence(t, c) // the station is open on the leader
	// A receiver's record, for the play at the end.
	if err := c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
	pw, err := c.CreateDevice(ctx, loa.Device{ID: "rx-0", AreaID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster up, %s leads: %v", lead.id, time.Since(began).Round(time.Millisecond))

	// The follower controller dies; the leader keeps its lead with the
	// witness (the only other controller is down, so no one else can lead).
	if err := down.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down.cmd.Wait()
	if l := waitLeader(t, nodes, down); l != lead {
		t.Fatalf("%s leads after %s died, want %s still", l.id, down.id, lead.id)
	}

	src := testSignal(3 * time.Second)
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, src, 48000, 1); err != nil {
		t.Fatal(err)
	}
	status, med := postMedia(t, "http://"+lead.http, token, "upload-while-down.wav", wav.Bytes())
	if status != http.StatusCreated {
		t.Fatalf("upload with %s down: HTTP %d, want 201", down.id, status)
	}
	blob := func(p *clusterProc) string { return filepath.Join(p.data, "media", med.Hash+".opus") }
	want, err := os.ReadFile(blob(lead))
	if err != nil {
		t.Fatalf("the leader does not hold the file it accepted: %v", err)
	}
	if sum := sha256.Sum256(want); hex.EncodeToString(sum[:]) != med.Hash {
		t.Fatalf("the leader's file hashes to %x, its record says %s", sum, med.Hash)
	}
	// The upload returned once a quorum held the bytes: with n2 down,
	// that is the leader and the witness.
	if _, err := os.Stat(blob(witness)); err != nil {
		t.Errorf("the witness does not hold the file after the upload returned: %v", err)
	}
	if _, err := os.Stat(blob(down)); err == nil {
		t.Fatalf("%s holds the file although it was down during the upload", down.id)
	}
	var list []loa.Media
	if err := c.JSON(ctx, "GET", "/api/v1/media", nil, &list); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list, func(m loa.Media) bool { return m.ID == med.ID && m.Hash == med.Hash }) {
		t.Fatalf("the upload %s is not in the media list %+v", med.ID, list)
	}

	// Back on the same data directory (info level: its catch-up logs the
	// pull), it follows and pulls the file it lacks.
	back := time.Now()
	down.start(t, buildLoa(t), append(peerArgs(nodes), "-log", "info"))
	loatest.Eventually(t, 60*time.Second, func() bool { r, l := down.role(); return r == "follower" && l == lead.id },
		"the restarted node to follow "+lead.id)
	loatest.Eventually(t, 60*time.Second, func() bool { _, err := os.Stat(blob(down)); return err == nil },
		"the restarted node to pull the file uploaded while it was down")
	t.Logf("%s holds the file %v after its restart", down.id, time.Since(back).Round(time.Millisecond))
	if got, err := os.ReadFile(blob(down)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s's copy: %d bytes (%v), want the leader's %d bytes", down.id, len(got), err, len(want))
	}
	loatest.Eventually(t, 10*time.Second, func() bool {
		l := newestLog(t, down)
		return strings.Contains(l, "pulled a missing blob") && strings.Contains(l, "from="+lead.id) && strings.Contains(l, med.Hash)
	}, "the restarted node to log its pull of "+med.Hash)
	// The leader's watch asks each node what its last catch-up lacked:
	// nothing, once the file is pulled.
	loatest.Eventually(t, 30*time.Second, func() bool { return len(blobAlarms(t, c, true)) == 0 },
		"no active blob_missing alarm on the leader")

	// The restarted node leads and plays the media from its own copy.
	loatest.Eventually(t, 60*time.Second, func() bool {
		if r, _ := down.role(); r == "leader" {
			return true
		}
		if err := c.JSON(ctx, "POST", "/api/v1/cluster/transfer", map[string]string{"to": down.id}, nil); err != nil {
			t.Logf("transfer to %s: %v", down.id, err)
			time.Sleep(time.Second)
			return false
		}
		for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
			if r, _ := down.role(); r == "leader" {
				return true
			}
		}
		return false
	}, down.id+" to lead after a transfer")
	loatest.Eventually(t, 30*time.Second, func() bool { r, l := lead.role(); return r == "follower" && l == down.id },
		lead.id+" to follow "+down.id)
	c2 := api.NewClient("http://"+down.http, token)
	clusterFence(t, c2)
	var audio string
	if err := c2.Do(ctx, "GET", "/api/v1/media/"+med.ID+"/audio", "", nil, &audio); err != nil {
		t.Fatal(err)
	}
	if audio != string(want) {
		t.Fatalf("%s serves %d bytes of audio, want the uploaded %d", down.id, len(audio), len(want))
	}
	fleet, err := firmwaresim.StartFleet(ctx, []firmwaresim.Config{{ID: "rx-0", Password: pw, Broker: "tcp://" + down.mqtt,
		Decode: true, KeepPCM: true, Logger: testLogger(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := c2.WaitOnline(ctx, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	r := fleet.Receivers()[0]
	s := &system{t: t, api: c2, byArea: map[string][]*firmwaresim.Receiver{"a": {r}}}
	sess := s.play(med.ID, "a")
	if end := s.finish(sess, med.Duration, "a"); end.State != loa.SessionEnded {
		t.Errorf("the play from %s's pulled copy is %s (%s), want ended", down.id, end.State, end.Reason)
	}
	st, _ := r.Session(sess.ID)
	if float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
		t.Errorf("%s decoded %d of %d frames: %+v", r.ID(), st.Decoded, med.Frames, st)
	}
	if cor := bestCorrelation(src, r.PCM(sess.ID)); cor < 0.9 {
		t.Errorf("%s: the audio played from %s correlates %.3f with the source, want ≥ 0.9", r.ID(), down.id, cor)
	}
	if active := blobAlarms(t, c2, true); len(active) > 0 {
		t.Errorf("blob_missing alarms active on the new leader: %+v", active)
	}
	t.Logf("blob_missing alarms ever raised: %d; test took %v", len(blobAlarms(t, c2, false)), time.Since(began).Round(time.Millisecond))
}

// postMedia uploads a file as the console does and returns the status and
// the media record.
func postMedia(t *testing.T, base, token, name string, data []byte) (int, *loa.Media) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("name", name)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/media", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m loa.Media
	if res.StatusCode < 300 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("upload answer %q: %v", b, err)
		}
	} else {
		t.Logf("upload: HTTP %d %s", res.StatusCode, b)
	}
	return res.StatusCode, &m
}

// blobAlarms lists the blob_missing alarms the node c talks to knows:
// only the active ones, or all.
func blobAlarms(t *testing.T, c *api.Client, active bool) []loa.Alarm {
	t.Helper()
	q := "/api/v1/alarms?kind=" + loa.AlarmBlobMissing
	if active {
		q += "&active=true"
	}
	var out []loa.Alarm
	if err := c.JSON(context.Background(), "GET", q, nil, &out); err != nil {
		t.Fatalf("alarms: %v", err)
	}
	return out
}

// newestLog returns the log of the node's latest start.
func newestLog(t *testing.T, p *clusterProc) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(p.data, "serve-*.log"))
	if len(logs) == 0 {
		return ""
	}
	slices.Sort(logs) // serve-<unix ns>.log: the same width for centuries
	b, err := os.ReadFile(logs[len(logs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClusterLeaderPullsWhatItLacks: n2 is down while a file is uploaded
// (n1 and the witness hold it), then n1 fails before n2 is back. n2,
// restarted, leads with the witness: it must pull the file it lacks from
// the node that holds it — the witness, as no other node does — and play
// it; a leader lacking a file would fail every play of it.
func TestClusterLeaderPullsWhatItLacks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs three controller processes")
	}
	t.Parallel() // its own nodes, data dirs and ports; mostly waiting
	began := time.Now()
	ctx := context.Background()
	nodes, lead := startCluster(t)
	token := lead.adminToken(t)
	var down *clusterProc
	for _, p := range nodes {
		if !p.witness && p != lead {
			down = p
		}
	}
	clusterFence(t, api.NewClient("http://"+lead.http, token))
	if err := down.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down.cmd.Wait()
	waitLeader(t, nodes, down)
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, testSignal(2*time.Second), 48000, 1); err != nil {
		t.Fatal(err)
	}
	status, med := postMedia(t, "http://"+lead.http, token, "before-the-failure.wav", wav.Bytes())
	if status != http.StatusCreated {
		t.Fatalf("upload with %s down: HTTP %d, want 201", down.id, status)
	}
	want, err := os.ReadFile(filepath.Join(lead.data, "media", med.Hash+".opus"))
	if err != nil {
		t.Fatal(err)
	}

	// n1 fails; n2 comes back and leads with the witness.
	if err := lead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lead.cmd.Wait()
	down.start(t, buildLoa(t), append(peerArgs(nodes), "-log", "info"))
	if l := waitLeader(t, nodes, lead); l != down {
		t.Fatalf("%s leads, want %s", l.id, down.id)
	}
	c := api.NewClient("http://"+down.http, token)
	clusterFence(t, c)
	loatest.Eventually(t, 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(down.data, "media", med.Hash+".opus"))
		return err == nil
	}, "the new leader to pull the file it lacks")
	loatest.Eventually(t, 10*time.Second, func() bool {
		l := newestLog(t, down)
		return strings.Contains(l, "pulled a missing blob") && strings.Contains(l, "from=w") && strings.Contains(l, med.Hash)
	}, "the new leader to log its pull of "+med.Hash+" from the witness")
	var audio string
	if err := c.Do(ctx, "GET", "/api/v1/media/"+med.ID+"/audio", "", nil, &audio); err != nil {
		t.Fatal(err)
	}
	if audio != string(want) {
		t.Fatalf("%s serves %d bytes of audio, want the uploaded %d", down.id, len(audio), len(want))
	}
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}
