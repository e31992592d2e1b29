package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// benchFailover runs a three-node cluster (two controllers and a witness,
// `loa serve` child processes) with simulated receivers in this process,
// and takes the leader down N times in the middle of a programme, by
// SIGKILL (the kernel resets its connections) or SIGSTOP (frozen: devices
// notice only by their keep-alive), with a schedule due inside each
// failover window and one emergency alert (issue 15). Figures come from
// the receivers' own records and the new leader's sessions.
func benchFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o failoverOpts
	fs.IntVar(&o.Failovers, "failovers", 10, "leader failovers, alternately SIGKILL and SIGSTOP (the first by -seed)")
	fs.IntVar(&o.Receivers, "receivers", 500, "simulated receivers playing the programme (plus a few for the schedules and the alert)")
	fs.DurationVar(&o.KeepAlive, "keepalive", 5*time.Second, "the receivers' MQTT keep-alive")
	fs.DurationVar(&o.Programme, "programme", 40*time.Second, "programme length; one plays across each failover")
	fs.DurationVar(&o.Grace, "grace", 30*time.Second, "the nodes' -grace: a schedule starting later than this after its time is missed")
	fs.IntVar(&o.Decode, "decode", 10, "receivers that fully decode with libopus (the rest verify packets and play out)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the failover kinds and schedule offsets; 0 picks one (printed)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the nodes' data dirs and logs (kept anyway on error)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Failovers < 1 || o.Receivers < 1 || o.Receivers > 5000 || o.KeepAlive < time.Second || o.Programme < 20*time.Second || o.Grace < 5*time.Second {
		return errors.New("need -failovers ≥ 1, -receivers within 1..5000, -keepalive ≥ 1s, -programme ≥ 20s, -grace ≥ 5s")
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1_000_000
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Exe = exe
	_, err = runFailover(ctx, o, stdout, stderr)
	return err
}

type failoverOpts struct {
	Failovers, Receivers, Decode int
	KeepAlive, Programme, Grace  time.Duration
	Seed                         int64
	Keep                         bool
	Exe                          string // the loa binary the nodes run
}

// Receivers besides the programme's: each schedule plays to schedRx, the
// alert to alertRx, in communes of their own so that neither interrupts
// the programme whose gaps are measured.
const (
	failoverSchedRx = 5
	failoverAlertRx = 5
)

// failoverNode is one node of the bench's cluster, a `loa serve` process
// on fixed loopback ports, restarted on the same ones.
type failoverNode struct {
	id                     string
	witness                bool
	data, http, mqtt, raft string
	log                    *os.File

	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *failoverNode) spec() string {
	s := fmt.Sprintf("id=%s,raft=%s,api=http://%s,mqtt=tcp://%s", p.id, p.raft, p.http, p.mqtt)
	if p.witness {
		s += ",witness"
	}
	return s
}

func (p *failoverNode) start(o failoverOpts, peers []string) error {
	args := append([]string{"serve", "-data", p.data, "-http", p.http, "-mqtt-listen", p.mqtt,
		"-mqtt-pass", "bench-controller", "-rtp", "127.0.0.1:0", "-log", "warn", "-https", "", "-mqtt-tls-listen", "",
		"-grace", o.Grace.String(), "-node-id", p.id, "-raft-bind", p.raft}, peers...)
	cmd := exec.Command(o.Exe, args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	fmt.Fprintf(p.log, "=== %s: loa serve\n", time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start node %s: %w", p.id, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	return nil
}

func (p *failoverNode) signal(sig syscall.Signal) {
	if p.cmd != nil {
		p.cmd.Process.Signal(sig)
		fmt.Fprintf(p.log, "=== %s: %v\n", time.Now().Format(time.RFC3339Nano), sig)
	}
}

// kill ends the node with SIGKILL and waits for its end.
func (p *failoverNode) kill() {
	if p.cmd == nil {
		return
	}
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// role asks the node's /healthz: "leader" (the station's own answer),
// "follower" (and whom it follows), or "" when it does not answer.
func (p *failoverNode) role() (role, leader string) {
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

// failoverRun is one run's state.
type failoverRun struct {
	o     failoverOpts
	out   io.Writer
	say   func(format string, a ...any)
	nodes []*failoverNode
	peers []string
	token string
	lead  *failoverNode
	load1 float64 // the host's load average when the run started
}

func (run *failoverRun) api() *api.Client { return api.NewClient("http://"+run.lead.http, run.token) }

// waitLeader waits until one controller other than gone serves as the
// station and every other live node follows it.
func (run *failoverRun) waitLeader(ctx context.Context, gone *failoverNode, timeout time.Duration) (*failoverNode, error) {
	var lead *failoverNode
	err := waitUntil(ctx, timeout, nil, func() bool {
		lead = nil
		for _, p := range run.nodes {
			if p == gone || p.cmd == nil {
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
	}, "controller node leading the cluster")
	return lead, err
}

// failoverRecord is what one failover measured.
type failoverRecord struct {
	kind        string // "killed" or "frozen"
	down        time.Time
	leaderAfter time.Duration
	from, to    string
	gaps        []float64 // ms, one per programme receiver that continued
	noticed     []float64 // ms from the takedown to a receiver dialing the other broker
	moved       bool      // leadership had moved on its own since the previous failover
	continued   int
	noGap       int // negative control: receivers with no measurable gap
	doubles     int
	schedule    failoverSchedule
}

type failoverSchedule struct {
	id      string
	at      time.Time
	started bool
	late    time.Duration // first packet sent after its time
	missed  bool
	heard   int           // schedule receivers that played it
	firstRx time.Duration // the latest of their first frames after its time
}

// runFailover runs the bench with o and returns its JSON figures. The data
// dirs and logs are kept when it fails or with -keep.
func runFailover(ctx context.Context, o failoverOpts, stdout, stderr io.Writer) (_ map[string]any, err error) {
	dir, err := os.MkdirTemp("", "loa-failover-")
	if err != nil {
		return nil, err
	}
	run := &failoverRun{o: o, out: stdout, say: func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }, load1: loadAverage()}
	defer func() {
		for _, p := range run.nodes {
			p.kill()
			p.log.Close()
		}
		if err != nil || o.Keep {
			fmt.Fprintf(stderr, "bench failover: data dirs and node logs kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	rng := rand.New(rand.NewSource(o.Seed))
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// The cluster.
	for _, n := range []*failoverNode{{id: "n1"}, {id: "n2"}, {id: "w", witness: true}} {
		n.data = filepath.Join(dir, n.id)
		if err := os.MkdirAll(n.data, 0o750); err != nil {
			return nil, err
		}
		if n.log, err = os.Create(filepath.Join(dir, n.id+".log")); err != nil {
			return nil, err
		}
		for _, addr := range []*string{&n.http, &n.mqtt, &n.raft} {
			port, err := freeTCPPort()
			if err != nil {
				return nil, err
			}
			*addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		run.nodes = append(run.nodes, n)
		run.peers = append(run.peers, "-cluster-peer", n.spec())
	}
	started := time.Now()
	for _, n := range run.nodes {
		if err := n.start(o, run.peers); err != nil {
			return nil, err
		}
	}
	if run.lead, err = run.waitLeader(ctx, nil, 2*time.Minute); err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(run.lead.data, "admin-token"))
	if err != nil {
		return nil, err
	}
	run.token = strings.TrimSpace(string(tok))
	run.say("bench failover: host load average %.2f, %d CPUs", run.load1, runtime.NumCPU())
	run.say("bench failover: seed %d; cluster of n1, n2 and witness w up in %v, %s leads; %d programme receivers (+%d for schedules, +%d for the alert), keep-alive %v",
		o.Seed, time.Since(started).Round(time.Millisecond), run.lead.id, o.Receivers, failoverSchedRx, failoverAlertRx, o.KeepAlive)

	// Areas, devices, receivers: each given both controllers' brokers.
	c := run.api()
	if err := c.CreateArea(ctx, loa.Area{ID: "p", Name: "Tỉnh", Kind: loa.AreaProvince}); err != nil {
		return nil, err
	}
	for _, a := range []string{"prog", "sched", "alert"} {
		if err := c.CreateArea(ctx, loa.Area{ID: a, ParentID: "p", Name: "Xã " + a, Kind: loa.AreaCommune}); err != nil {
			return nil, err
		}
	}
	total := o.Receivers + failoverSchedRx + failoverAlertRx
	cfgs := make([]firmwaresim.Config, total)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		cerr error
		sem  = make(chan struct{}, 8)
	)
	for i := range cfgs {
		id, area := fmt.Sprintf("rx-%04d", i), "prog"
		switch {
		case i >= o.Receivers+failoverSchedRx:
			area = "alert"
		case i >= o.Receivers:
			area = "sched"
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: area})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cerr = errors.Join(cerr, fmt.Errorf("device %s: %w", id, err))
				return
			}
			cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: "tcp://" + run.nodes[0].mqtt,
				Brokers: []string{"tcp://" + run.nodes[1].mqtt}, KeepAlive: o.KeepAlive, Decode: i < o.Decode, Logger: logger}
		}()
	}
	wg.Wait()
	if cerr != nil {
		return nil, cerr
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	if err := c.WaitOnline(ctx, total, 3*time.Minute); err != nil {
		return nil, err
	}
	rxs := fleet.Receivers()
	prog, sched, alertRx := rxs[:o.Receivers], rxs[o.Receivers:o.Receivers+failoverSchedRx], rxs[o.Receivers+failoverSchedRx:]
	run.say("%d receivers online %v after the cluster was up", total, time.Since(started).Round(time.Millisecond))

	upload := func(name string, hz float64, d time.Duration) (*loa.Media, error) {
		var wav bytes.Buffer
		if err := media.EncodeWAV(&wav, media.Tone(hz, 48000, d, 0.4), 48000, 1); err != nil {
			return nil, err
		}
		return run.api().UploadMedia(ctx, name, wav.Bytes())
	}
	programme, err := upload("programme.wav", 440, o.Programme)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	bulletin, err := upload("bulletin.wav", 660, 12*time.Second)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	warning, err := upload("warning.wav", 880, 8*time.Second)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}

	var records []*failoverRecord
	var alert loa.Alert
	firstKilled := rng.Intn(2) == 0
	for k := range o.Failovers {
		kind := "frozen"
		if (k%2 == 0) == firstKilled {
			kind = "killed"
		}
		rec, err := run.failover(ctx, k, kind, rng, prog, sched, programme, bulletin, func() error {
			if k != 0 {
				return nil
			}
			// The alert: sent 2 s before the first takedown, it plays
			// across it (8 s).
			return retry(ctx, time.Now().Add(10*time.Second), func(ctx context.Context) error {
				return run.api().JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Bão số 3", "level": loa.AlertEmergency,
					"content": map[string]any{"media_id": warning.ID}, "targets": map[string][]string{"areas": {"alert"}},
					"repeats": 1, "expires_in": "10m"}, &alert)
			})
		})
		if err != nil {
			return nil, fmt.Errorf("failover %d (%s): %w", k+1, kind, err)
		}
		records = append(records, rec)
	}

	// The alert, from its receivers' own records: every session that
	// carried it (a new leader sends a late one to receivers that had not
	// played it whole).
	var al failoverAlert
	if alert.ID != "" {
		al.id = alert.ID
		waitUntil(ctx, 2*time.Minute, nil, func() bool {
			var a loa.Alert
			return run.api().JSON(ctx, "GET", "/api/v1/alerts/"+alert.ID, nil, &a) == nil && a.State != loa.AlertActive
		}, "the alert ending")
		ids, err := run.sessionsOf(ctx, loa.Origin{Kind: loa.OriginAlert, ID: alert.ID})
		if err != nil {
			return nil, err
		}
		al.sessions = len(ids)
		for _, r := range alertRx {
			per, _ := heardOf(r, ids)
			var total uint64
			for _, n := range per {
				total += n
				if n > uint64(warning.Frames) {
					al.doubles++ // more frames of one session than it has
				}
			}
			if total > 0 {
				al.heard++
			}
			if total > uint64(warning.Frames) {
				al.replayed++
			}
		}
	}
	return run.report(records, o, al), nil
}

// failover plays the programme to prog, creates a schedule due 0.5–3 s
// after the moment it takes the leader down (kind: "killed" or "frozen"),
// waits for the new leader and for prog to continue, brings the old leader
// back as a follower and, once the programme ended, reads the figures.
func (run *failoverRun) failover(ctx context.Context, k int, kind string, rng *rand.Rand, prog, sched []*firmwaresim.Receiver,
	programme, bulletin *loa.Media, beforeDown func() error) (*failoverRecord, error) {
	o := run.o
	rec := &failoverRecord{kind: kind, from: run.lead.id}
	var sess *loa.Session
	err := retry(ctx, time.Now().Add(30*time.Second), func(ctx context.Context) error {
		var err error
		sess, err = run.api().StartSession(ctx, api.SessionRequest{MediaID: programme.ID, Targets: loa.Targets{Areas: []string{"prog"}}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start the programme: %w", err)
	}
	// Every receiver plays it (half a second of it) before the takedown.
	playing := func(r *firmwaresim.Receiver, after time.Time, frames uint64) bool {
		for _, st := range r.Sessions() {
			if st.Session == sess.ID && !st.FirstPlayed.Before(after) && st.FromPacket() >= frames {
				return true
			}
		}
		return false
	}
	for _, r := range prog {
		if err := waitUntil(ctx, time.Minute, nil, func() bool { return playing(r, time.Time{}, 25) }, r.ID()+" playing the programme"); err != nil {
			return nil, err
		}
	}
	// The schedule, due 0.5–3 s after the takedown.
	d := 500*time.Millisecond + time.Duration(rng.Int63n(int64(2500*time.Millisecond)))
	at := time.Now().Add(4 * time.Second).Add(d).Truncate(time.Second).Add(time.Second)
	down := at.Add(-d)
	rec.schedule = failoverSchedule{id: fmt.Sprintf("failover-%02d", k+1), at: at}
	u := at.UTC()
	body := map[string]any{"id": rec.schedule.id, "name": "Bản tin " + rec.schedule.id, "enabled": true, "priority": 64,
		"rule":    map[string]any{"kind": "once", "date": u.Format("2006-01-02"), "time": u.Format("15:04:05"), "zone": "UTC"},
		"content": map[string]string{"media_id": bulletin.ID}, "targets": map[string][]string{"areas": {"sched"}}}
	if err := run.api().JSON(ctx, "POST", "/api/v1/schedules", body, nil); err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if wait := time.Until(down.Add(-2 * time.Second)); wait > 0 {
		sleepCtx(ctx, wait)
	}
	if err := beforeDown(); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	if late := time.Since(down); late > 0 {
		// A loaded host overran the plan: the takedown is now, and the
		// schedule counts only if still due after it.
		run.say("  failover %d: the setup overran the takedown moment by %v (a loaded host)", k+1, late.Round(time.Millisecond))
	}
	sleepCtx(ctx, time.Until(down))

	// Who leads now: leadership may have moved since the last failover
	// (a thawed node forcing an election); the takedown is of the leader.
	lead, err := run.waitLeader(ctx, nil, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if lead != run.lead {
		run.say("  failover %d: leadership moved from %s to %s since the last failover, unprovoked", k+1, run.lead.id, lead.id)
		rec.moved = true
		run.lead, rec.from = lead, lead.id
	}
	old := run.lead
	// When each receiver dials away from the old leader's broker: it
	// noticed the loss (at once after a reset, by keep-alive when frozen).
	noticed := make([]time.Time, len(prog))
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		oldURL := "tcp://" + old.mqtt
		for left := len(prog); left > 0; {
			for i, r := range prog {
				if noticed[i].IsZero() && r.Broker() != oldURL {
					noticed[i] = time.Now()
					left--
				}
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	rec.down = time.Now()
	if kind == "killed" {
		old.kill()
	} else {
		old.signal(syscall.SIGSTOP)
	}
	next, err := run.waitLeader(ctx, old, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	rec.leaderAfter = time.Since(rec.down)
	rec.to, run.lead = next.id, next

	// Every programme receiver continues (a part begun after the takedown),
	// within a generous bound: those that do not are counted, not waited for.
	bound := time.Now().Add(2*o.KeepAlive + time.Minute)
	for _, r := range prog {
		waitUntil(ctx, time.Until(bound), nil, func() bool { return playing(r, rec.down, 25) }, r.ID()+" continuing")
	}
	close(stopWatch)
	<-watched
	for _, t := range noticed {
		if !t.IsZero() {
			rec.noticed = append(rec.noticed, ms(t.Sub(rec.down)))
		}
	}
	// The old leader back, as a follower.
	if kind == "killed" {
		if err := old.start(o, run.peers); err != nil {
			return nil, err
		}
	} else {
		old.signal(syscall.SIGCONT)
	}
	if err := waitUntil(ctx, 2*time.Minute, old.exited, func() bool { r, l := old.role(); return r == "follower" && l == next.id }, old.id+" following "+next.id); err != nil {
		return nil, err
	}

	// The programme ends (on every receiver), then its records are read.
	end := sess.StartedAt.Add(programme.Duration)
	for _, r := range prog {
		waitUntil(ctx, time.Until(end)+time.Minute, nil, func() bool {
			st, ok := r.Session(sess.ID)
			return !ok || st.Done
		}, r.ID()+" ending the programme")
	}
	for _, r := range prog {
		var heard uint64
		var before, after *firmwaresim.SessionStats
		for _, st := range r.Sessions() {
			if st.Session != sess.ID {
				continue
			}
			heard += st.FromPacket()
			switch {
			case st.FirstPlayed.Before(rec.down):
				before = &st
			case after == nil && st.FromPacket() > 0:
				after = &st
			}
		}
		if heard > uint64(programme.Frames) {
			rec.doubles++ // more frames than the programme has: some played twice
		}
		if before == nil || after == nil {
			continue
		}
		rec.continued++
		// The last frame heard before: the part's end less the slots it
		// filled with concealment or silence after its last packet.
		last := before.Ended.Add(-time.Duration(before.Concealed+before.Silence) * protocol.FrameDuration)
		gap := after.FirstPlayed.Sub(last)
		if gap < 100*time.Millisecond {
			rec.noGap++
		}
		rec.gaps = append(rec.gaps, ms(gap))
	}

	// The schedule, from the new leader's sessions and its receivers.
	sc := &rec.schedule
	var sessions []*loa.Session
	if err := retry(ctx, time.Now().Add(30*time.Second), func(ctx context.Context) error {
		return run.api().JSON(ctx, "GET", "/api/v1/sessions", nil, &sessions)
	}); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	for _, s := range sessions {
		if s.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: sc.id}) && !s.FirstSentAt.IsZero() {
			if late := s.FirstSentAt.Sub(sc.at); !sc.started || late < sc.late {
				sc.started, sc.late = true, late
			}
		}
	}
	sc.missed = !sc.started || sc.late > o.Grace
	ids := map[string]bool{}
	for _, s := range sessions {
		if s.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: sc.id}) {
			ids[s.ID] = true
		}
	}
	for _, r := range sched {
		per, first := heardOf(r, ids)
		var total uint64
		for _, n := range per {
			total += n
		}
		if total > uint64(bulletin.Frames) {
			rec.doubles++
		}
		if total > 0 {
			sc.heard++
			sc.firstRx = max(sc.firstRx, first.Sub(sc.at))
		}
	}
	run.say("failover %2d %-6s %s→%s: new leader after %v; receivers left the old broker after p50 %.0f ms, max %.0f ms; %d of %d receivers continued, gap p50 %.0f ms p99 %.0f ms; %d without a gap; %d double plays; schedule %s due %.1f s after the takedown: %s",
		k+1, kind, rec.from, rec.to, rec.leaderAfter.Round(time.Millisecond), pct(rec.noticed, 50), pct(rec.noticed, 100), rec.continued, len(prog), pct(rec.gaps, 50), pct(rec.gaps, 99),
		rec.noGap, rec.doubles, sc.id, sc.at.Sub(rec.down).Seconds(), sc.describe(len(sched)))
	return rec, nil
}

func (sc failoverSchedule) describe(rx int) string {
	if !sc.started {
		return "never started (missed)"
	}
	s := fmt.Sprintf("first packet %v after its time, heard on %d of %d receivers (last first frame %v after its time)",
		sc.late.Round(time.Millisecond), sc.heard, rx, sc.firstRx.Round(time.Millisecond))
	if sc.missed {
		s += ", beyond its grace (missed)"
	}
	return s
}

// report prints the table per kind and the JSON line, and returns the
// figures.
func (run *failoverRun) report(records []*failoverRecord, o failoverOpts, al failoverAlert) map[string]any {
	type agg struct {
		n, continued, noGap, doubles, schedules, missed int
		gaps, leader, noticed                           []float64
	}
	by := map[string]*agg{"killed": {}, "frozen": {}}
	everyContinued := make([]int, 0)
	missed, doubles, schedules, schedRx, schedHeard, moved := 0, 0, 0, 0, 0, 0
	for _, r := range records {
		a := by[r.kind]
		a.n++
		a.continued += r.continued
		a.noGap += r.noGap
		a.doubles += r.doubles
		a.gaps = append(a.gaps, r.gaps...)
		a.noticed = append(a.noticed, r.noticed...)
		a.leader = append(a.leader, ms(r.leaderAfter))
		if r.schedule.at.After(r.down) { // due during the failover
			a.schedules++
			schedules++
			schedRx += failoverSchedRx
			schedHeard += r.schedule.heard
			if r.schedule.missed {
				a.missed++
				missed++
			}
		}
		doubles += r.doubles
		if r.moved {
			moved++
		}
		everyContinued = append(everyContinued, r.continued)
	}
	continued := o.Receivers
	for _, c := range everyContinued {
		continued = min(continued, c)
	}
	doubles += al.doubles
	run.say("")
	run.say("%-7s %9s %14s %14s %12s %12s %11s %9s %9s", "kind", "failovers", "leader p50 ms", "leader p99 ms", "gap p50 ms", "gap p99 ms", "continued", "doubles", "missed")
	for _, kind := range []string{"killed", "frozen"} {
		a := by[kind]
		if a.n == 0 {
			continue
		}
		run.say("%-7s %9d %14.0f %14.0f %12.0f %12.0f %11s %9d %9s", kind, a.n, pct(a.leader, 50), pct(a.leader, 99), pct(a.gaps, 50), pct(a.gaps, 99),
			fmt.Sprintf("%d/%d", a.continued, a.n*o.Receivers), a.doubles, fmt.Sprintf("%d/%d", a.missed, a.schedules))
	}
	for _, kind := range []string{"killed", "frozen"} {
		if a := by[kind]; a.n > 0 {
			run.say("%s: receivers left the old leader's broker (noticed the loss) after p50 %.0f ms, p99 %.0f ms, max %.0f ms; the new leader resumes a session once all its receivers are back (or after 15 s)",
				kind, pct(a.noticed, 50), pct(a.noticed, 99), pct(a.noticed, 100))
		}
	}
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	killed, frozen := by["killed"], by["frozen"]
	gapGoal := func(a *agg, bound float64) string {
		if a.n == 0 {
			return "none run"
		}
		return fmt.Sprintf("%.0f ms < %.0f ms: %s", pct(a.gaps, 99), bound, goal(pct(a.gaps, 99) < bound))
	}
	run.say("goals: gap p99 killed %s; frozen (< keep-alive + 5 s) %s; every receiver continued every failover (%d of %d): %s; schedules due during a failover %d, missed %d: %s; double plays %d: %s",
		gapGoal(killed, 5000), gapGoal(frozen, ms(o.KeepAlive+5*time.Second)),
		continued, o.Receivers, goal(continued == o.Receivers), schedules, missed, goal(schedules > 0 && missed == 0), doubles, goal(doubles == 0))
	run.say("schedules due during a failover: %d, each to %d receivers; heard on %d of %d (the sessions API says started; a receiver not back when its session starts is not sent it later)",
		schedules, failoverSchedRx, schedHeard, schedRx)
	if moved > 0 {
		run.say("leadership moved on its own between failovers %d times (the takedown then took down the leader found at that moment)", moved)
	}
	if al.id != "" {
		run.say("alert %s sent 2 s before the first takedown, in %d sessions: heard on %d of %d receivers; %d heard more of one session than it has; %d heard more than it has in all (played again from its beginning after the failover, by design)",
			al.id, al.sessions, al.heard, failoverAlertRx, al.doubles, al.replayed)
	}
	// Negative control: a leader killed mid-programme must leave a gap on
	// receivers; none would mean the measure cannot see one.
	run.say("negative control: receivers with no gap (< 100 ms) across a failover: %d after a kill, %d after a freeze (expected 0: each takedown silences them until the new leader re-tunes)",
		killed.noGap, frozen.noGap)
	res := map[string]any{
		"failovers": len(records), "failovers_killed": killed.n, "failovers_frozen": frozen.n,
		"gap_ms_p50": pct(killed.gaps, 50), "gap_ms_p99": pct(killed.gaps, 99),
		"gap_ms_p50_frozen": pct(frozen.gaps, 50), "gap_ms_p99_frozen": pct(frozen.gaps, 99),
		"leader_ms_p50": pct(killed.leader, 50), "leader_ms_p99": pct(killed.leader, 99),
		"leader_ms_p50_frozen": pct(frozen.leader, 50), "leader_ms_p99_frozen": pct(frozen.leader, 99),
		"receivers": o.Receivers, "receivers_continued": continued,
		"schedules_due_during_failover": schedules, "missed": missed, "double_plays": doubles,
		"noticed_ms_p99": pct(killed.noticed, 99), "noticed_ms_p99_frozen": pct(frozen.noticed, 99),
		"no_gap_killed": killed.noGap, "no_gap_frozen": frozen.noGap,
		"schedule_receivers": schedRx, "schedule_receivers_heard": schedHeard, "load1_start": run.load1, "load1_end": loadAverage(),
		"alert_heard": al.heard, "alert_replayed": al.replayed, "alert_receivers": failoverAlertRx,
		"leader_moved_unprovoked": moved, "keepalive_ms": o.KeepAlive.Milliseconds(), "seed": o.Seed,
	}
	printJSONLine(run.out, res)
	return res
}

// loadAverage is the host's 1-minute load average (Linux), 0 if unknown:
// the figures depend on what else the machine runs.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}

// failoverAlert is what the alert's receivers played of it.
type failoverAlert struct {
	id                                 string
	sessions, heard, doubles, replayed int
}

// sessionsOf returns the ids of the leader's sessions of origin o.
func (run *failoverRun) sessionsOf(ctx context.Context, o loa.Origin) (map[string]bool, error) {
	var sessions []*loa.Session
	if err := retry(ctx, time.Now().Add(30*time.Second), func(ctx context.Context) error {
		return run.api().JSON(ctx, "GET", "/api/v1/sessions", nil, &sessions)
	}); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	ids := map[string]bool{}
	for _, s := range sessions {
		if s.Origin == o {
			ids[s.ID] = true
		}
	}
	return ids, nil
}

// heardOf is what r played from packets of each session in ids (all its
// parts), and when it first played one.
func heardOf(r *firmwaresim.Receiver, ids map[string]bool) (map[string]uint64, time.Time) {
	per := map[string]uint64{}
	var first time.Time
	for _, st := range r.Sessions() {
		if !ids[st.Session] || st.Played == 0 {
			continue
		}
		per[st.Session] += st.FromPacket()
		if first.IsZero() || st.FirstPlayed.Before(first) {
			first = st.FirstPlayed
		}
	}
	return per, first
}
