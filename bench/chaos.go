package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// The fault kinds of `loa bench chaos`.
const (
	faultControllerKill = "controller_kill" // SIGKILL, then `loa serve` again on the same data dir
	faultBrokerKill     = "broker_kill"     // SIGKILL of Mosquitto (nothing persisted), then a new one
	faultReceiverReboot = "receiver_reboot" // a few receivers powered off, then booted again
	faultLossBurst      = "loss_burst"      // 10 % of every receiver's incoming RTP dropped for a while
	faultClockStep      = "clock_step"      // the controller's wall clock stepped back, later forward again
)

var faultKinds = []string{faultControllerKill, faultBrokerKill, faultReceiverReboot, faultLossBurst, faultClockStep}

// The workload.
const (
	chaosScheduleEvery = 30 * time.Second
	chaosAlertEvery    = time.Minute
	chaosAlertExpiry   = 90 * time.Second
	chaosProgramme     = 8 * time.Second
	chaosAlert         = 3 * time.Second
	chaosCommunes      = 10
)

// chaosOpts are the flags of `loa bench chaos`.
type chaosOpts struct {
	For       time.Duration
	Receivers int
	Seed      int64
	Keep      bool     // keep the temp dir (data, logs) even without harm
	Exe       string   // the loa binary run as `loa serve`; default this one
	Env       []string // the controller's environment; nil: this process's
}

// benchChaos runs a station under random faults and checks what the
// receivers played against what the controller promised and logged.
func benchChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o chaosOpts
	fs.DurationVar(&o.For, "for", 10*time.Minute, "how long to inject faults; the run then drains (alerts to expiry)")
	fs.IntVar(&o.Receivers, "receivers", 200, "simulated receivers, in this process")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the fault plan; 0 picks one (printed)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the data dir and the controller's and Mosquitto's logs (kept anyway when harm is found)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.For < 20*time.Second || o.Receivers < 1 || o.Receivers > 5000 {
		return errors.New("need -for ≥ 20s and -receivers within 1..5000")
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1_000_000
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Exe = exe
	_, err = runChaos(ctx, o, stdout, stderr)
	return err
}

// chaosRun is one run's state.
type chaosRun struct {
	o      chaosOpts
	rng    *rand.Rand
	say    func(format string, a ...any)
	ctl    *chaosController
	broker *chaosMosquitto
	rx     *chaosReceivers
	api    *api.Client
	t0     time.Time

	programme, bulletin *loa.Media

	mu        sync.Mutex
	counts    map[string]int // faults injected, by kind
	steps     int            // clock steps made (two per clock_step fault)
	schedules []chaosSchedule
	alerts    []chaosAlertSent
	failed    []string // faults that could not be injected
}

type chaosSchedule struct {
	id string
	at time.Time
}

type chaosAlertSent struct {
	id      string
	sent    time.Time
	expires time.Time
}

// runChaos runs the bench with o and returns its JSON figures.
// The data dir and the logs are kept when it fails or finds harm.
func runChaos(ctx context.Context, o chaosOpts, stdout, stderr io.Writer) (_ map[string]any, err error) {
	dir, err := os.MkdirTemp("", "loa-chaos-")
	if err != nil {
		return nil, err
	}
	keep, told := o.Keep, false
	defer func() {
		if err != nil && ctx.Err() == nil {
			keep = true
		}
		if !keep {
			os.RemoveAll(dir)
		} else if !told {
			fmt.Fprintf(stdout, "bench chaos: data and logs kept in %s\n", dir)
		}
	}()
	var sayMu sync.Mutex // faults are told from their own goroutines
	run := &chaosRun{o: o, rng: rand.New(rand.NewSource(o.Seed)), counts: map[string]int{},
		say: func(format string, a ...any) { sayMu.Lock(); fmt.Fprintf(stdout, format+"\n", a...); sayMu.Unlock() }}

	if run.broker, err = newChaosMosquitto(dir); err != nil {
		return nil, err
	}
	if err := run.broker.start(ctx); err != nil {
		return nil, err
	}
	defer run.broker.log.Close()
	defer run.broker.kill()
	httpPort, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	rtpPort, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	ctlLog, err := os.Create(filepath.Join(dir, "controller.log"))
	if err != nil {
		return nil, err
	}
	defer ctlLog.Close()
	run.ctl = &chaosController{exe: o.Exe, env: o.Env, data: filepath.Join(dir, "data"), log: ctlLog,
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), rtpAddr: fmt.Sprintf("127.0.0.1:%d", rtpPort),
		mqttURL: run.broker.URL(), lead: 2 * time.Second, grace: 5 * time.Minute, delay: 200 * time.Millisecond}
	if err := run.ctl.start(ctx); err != nil {
		return nil, err
	}
	defer run.ctl.stop()
	run.api = api.NewClient("http://"+run.ctl.httpAddr, run.ctl.token)
	if err := run.setUp(ctx); err != nil {
		return nil, err
	}
	defer run.rx.close()

	run.say("bench chaos: %d receivers on Mosquitto %s, controller pid %d (loa serve), seed %d, faults for %v",
		o.Receivers, run.broker.URL(), run.ctl.cmd.Process.Pid, o.Seed, o.For)
	run.t0 = time.Now()
	plan := run.plan()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); run.scheduleLoop(ctx) }()
	go func() { defer wg.Done(); run.alertLoop(ctx) }()
	go func() { defer wg.Done(); run.inject(ctx, plan) }()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	run.say("bench chaos: faults over after %v; draining (alerts until played or expired, programmes until ended)", time.Since(run.t0).Round(time.Second))
	run.drain(ctx)
	res, err := run.check(ctx)
	if err != nil {
		return nil, err
	}
	res["duration_s"] = time.Since(run.t0).Seconds()
	if harm(res) > 0 {
		keep = true
	}
	if keep {
		run.say("bench chaos: data and logs kept in %s", dir)
		told = true
	}
	printJSONLine(stdout, res)
	return res, nil
}

// harm sums the counts that must be zero.
func harm(res map[string]any) int {
	n := 0
	for _, k := range []string{"alerts_not_delivered", "double_plays", "early_starts", "log_mismatches", "records_lost"} {
		v, _ := res[k].(int)
		n += v
	}
	return n
}

// setUp creates the areas and devices, starts the receivers and uploads the
// programme and the bulletin.
func (run *chaosRun) setUp(ctx context.Context) error {
	c := run.api
	if err := c.CreateArea(ctx, loa.Area{ID: "chaos", Name: "Chaos", Kind: loa.AreaProvince}); err != nil {
		return err
	}
	for i := range chaosCommunes {
		if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("chaos-%02d", i), ParentID: "chaos", Name: fmt.Sprintf("Xã %d", i), Kind: loa.AreaCommune}); err != nil {
			return err
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfgs := make([]firmwaresim.Config, run.o.Receivers)
	for i := range cfgs {
		id := fmt.Sprintf("rx-%04d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: fmt.Sprintf("chaos-%02d", i%chaosCommunes)})
		if err != nil {
			return err
		}
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: run.broker.URL(), Logger: quiet,
			Impair: firmwaresim.Impairment{Seed: run.o.Seed*10007 + int64(i) + 1}}
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		return err
	}
	run.rx = newChaosReceivers(cfgs, fleet)
	if err := c.WaitOnline(ctx, run.o.Receivers, 2*time.Minute); err != nil {
		return err
	}
	upload := func(name string, hz float64, d time.Duration) (*loa.Media, error) {
		var wav bytes.Buffer
		if err := media.EncodeWAV(&wav, media.Tone(hz, 48000, d, 0.4), 48000, 1); err != nil {
			return nil, err
		}
		return c.UploadMedia(ctx, name, wav.Bytes())
	}
	if run.programme, err = upload("programme.wav", 440, chaosProgramme); err != nil {
		return err
	}
	run.bulletin, err = upload("bulletin.wav", 880, chaosAlert)
	return err
}

// chaosFault is one planned fault: its kind, when (after t0), and how long
// its effect lasts.
type chaosFault struct {
	kind     string
	at, hold time.Duration
	step     time.Duration // clock_step: how far back
	picks    []int         // receiver_reboot: which receivers
}

// occurrence is the k-th scheduled start, after t0.
func occurrence(k int) time.Duration { return 15*time.Second + time.Duration(k)*chaosScheduleEvery }

// plan draws the faults from the seed: one of every kind, and about one
// more every 15 s, at random moments of [5 s, -for − 10 s]; about half the
// controller kills a few seconds before a scheduled start.
func (run *chaosRun) plan() []chaosFault {
	d := run.o.For
	lo, hi := 5*time.Second, d-10*time.Second
	uniform := func(a, b time.Duration) time.Duration {
		return (a + time.Duration(run.rng.Int63n(int64(b-a)+1))).Round(100 * time.Millisecond)
	}
	// Effects last at most a quarter of the run, so short runs still end calm.
	capped := func(a, b time.Duration) time.Duration { return min(uniform(a, b), max(d/4, 2*time.Second)) }
	kinds := append([]string(nil), faultKinds...)
	for range int(d / (15 * time.Second)) {
		kinds = append(kinds, faultKinds[run.rng.Intn(len(faultKinds))])
	}
	var plan []chaosFault
	beforeStart := true // the first controller kill is before a start
	for _, k := range kinds {
		f := chaosFault{kind: k, at: uniform(lo, hi)}
		switch k {
		case faultControllerKill:
			f.hold = uniform(2*time.Second, 6*time.Second)
			if beforeStart || run.rng.Intn(2) == 0 {
				var starts []time.Duration
				for i := 0; occurrence(i) < hi; i++ {
					if occurrence(i)-6*time.Second > lo {
						starts = append(starts, occurrence(i))
					}
				}
				if len(starts) > 0 {
					f.at = starts[run.rng.Intn(len(starts))] - uniform(time.Second, 6*time.Second)
				}
			}
			beforeStart = false
		case faultBrokerKill:
			f.hold = capped(3*time.Second, 10*time.Second)
		case faultReceiverReboot:
			f.hold = uniform(time.Second, 4*time.Second)
			n := run.o.Receivers
			f.picks = run.rng.Perm(n)[:max(1, n/50)]
		case faultLossBurst:
			f.hold = capped(10*time.Second, 30*time.Second)
		case faultClockStep:
			f.step = uniform(5*time.Second, 20*time.Second)
			f.hold = capped(10*time.Second, 30*time.Second)
		}
		plan = append(plan, f)
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	return plan
}

// inject runs the plan: each fault at its moment, faults of one kind one
// after the other.
func (run *chaosRun) inject(ctx context.Context, plan []chaosFault) {
	locks := map[string]*sync.Mutex{}
	for _, k := range faultKinds {
		locks[k] = &sync.Mutex{}
	}
	var wg sync.WaitGroup
	for _, f := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleepCtx(ctx, time.Until(run.t0.Add(f.at)))
			if ctx.Err() != nil {
				return
			}
			locks[f.kind].Lock()
			defer locks[f.kind].Unlock()
			if err := run.injectOne(ctx, f); err != nil {
				run.mu.Lock()
				run.failed = append(run.failed, fmt.Sprintf("%s at %v: %v", f.kind, f.at, err))
				run.mu.Unlock()
				run.say("  %6.1fs  %s FAILED: %v", time.Since(run.t0).Seconds(), f.kind, err)
				return
			}
			run.mu.Lock()
			run.counts[f.kind]++
			run.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (run *chaosRun) injectOne(ctx context.Context, f chaosFault) error {
	at := func() float64 { return time.Since(run.t0).Seconds() }
	switch f.kind {
	case faultControllerKill:
		// Told against the schedules actually created (whole seconds),
		// at the moment of the kill (a previous kill may have delayed it).
		next, now := "", time.Now()
		run.mu.Lock()
		for _, sc := range run.schedules {
			if d := sc.at.Sub(now); d >= 0 && d <= 10*time.Second {
				next = fmt.Sprintf(" (%.1fs before the scheduled start of %s)", d.Seconds(), sc.id)
			}
		}
		run.mu.Unlock()
		run.say("  %6.1fs  controller SIGKILL%s, down %v", at(), next, f.hold)
		return run.ctl.killFor(ctx, f.hold)
	case faultBrokerKill:
		run.say("  %6.1fs  Mosquitto SIGKILL, down %v", at(), f.hold)
		run.broker.kill()
		sleepCtx(ctx, f.hold)
		return run.broker.start(context.WithoutCancel(ctx))
	case faultReceiverReboot:
		var names []string
		for _, i := range f.picks {
			names = append(names, run.rx.ids[i])
			run.rx.powerOff(run.rx.ids[i])
		}
		run.say("  %6.1fs  receivers %v powered off for %v", at(), names, f.hold)
		sleepCtx(ctx, f.hold)
		var errs []error
		for _, id := range names {
			errs = append(errs, run.rx.boot(context.WithoutCancel(ctx), id))
		}
		return errors.Join(errs...)
	case faultLossBurst:
		run.say("  %6.1fs  10%% loss on every receiver's RTP for %v", at(), f.hold)
		run.rx.setLoss(0.1)
		sleepCtx(ctx, f.hold)
		run.rx.setLoss(0)
		return nil
	case faultClockStep:
		run.say("  %6.1fs  controller clock stepped back %v, forward again after %v", at(), f.step, f.hold)
		for _, off := range []time.Duration{-f.step, 0} {
			if off == 0 {
				sleepCtx(ctx, f.hold)
			}
			if err := run.ctl.setOffset(context.WithoutCancel(ctx), off); err != nil {
				return err
			}
			run.mu.Lock()
			run.steps++
			run.mu.Unlock()
		}
		return nil
	}
	return fmt.Errorf("unknown fault %q", f.kind)
}

// retry calls fn (with a 10 s bound) every second until it succeeds or
// until the deadline; the controller or broker may be down meanwhile.
func retry(ctx context.Context, until time.Time, fn func(ctx context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(until) {
			return err
		}
		sleepCtx(ctx, time.Second)
	}
}

// scheduleLoop creates a one-off schedule for every occurrence within the
// run, each about 20 s before it fires, through the API.
func (run *chaosRun) scheduleLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for k := 0; occurrence(k) < run.o.For; k++ {
		at := run.t0.Add(occurrence(k)).Truncate(time.Second)
		id := fmt.Sprintf("chaos-%03d", k)
		sleepCtx(ctx, time.Until(at.Add(-20*time.Second)))
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := at.UTC()
			body := map[string]any{"id": id, "name": "Chương trình " + id,
				"rule":    map[string]any{"kind": "once", "date": u.Format("2006-01-02"), "time": u.Format("15:04:05"), "zone": "UTC"},
				"content": map[string]string{"media_id": run.programme.ID}, "targets": map[string][]string{"areas": {"chaos"}},
				"priority": 64, "enabled": true}
			err := retry(ctx, at.Add(-3*time.Second), func(ctx context.Context) error {
				err := run.api.JSON(ctx, "POST", "/api/v1/schedules", body, nil)
				var ce *api.ClientError
				if errors.As(err, &ce) && ce.Code == "conflict" {
					return nil // an earlier try reached it, its answer did not
				}
				return err
			})
			if err != nil {
				run.say("  schedule %s for %s not created: %v", id, at.Format(time.TimeOnly), err)
				return
			}
			run.mu.Lock()
			run.schedules = append(run.schedules, chaosSchedule{id: id, at: at})
			run.mu.Unlock()
		}()
	}
	wg.Wait()
}

// alertLoop sends an emergency alert to every receiver each minute.
func (run *chaosRun) alertLoop(ctx context.Context) {
	for k := 0; ; k++ {
		due := run.t0.Add(8*time.Second + time.Duration(k)*chaosAlertEvery)
		if due.Sub(run.t0) >= run.o.For {
			return
		}
		sleepCtx(ctx, time.Until(due))
		if ctx.Err() != nil {
			return
		}
		var al loa.Alert
		var sent time.Time
		err := retry(ctx, due.Add(chaosAlertEvery/2), func(ctx context.Context) error {
			sent = time.Now()
			return run.api.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": fmt.Sprintf("chaos %d", k), "level": loa.AlertEmergency,
				"content": map[string]any{"media_id": run.bulletin.ID}, "targets": map[string][]string{"areas": {"chaos"}},
				"repeats": 1, "expires_in": chaosAlertExpiry.String()}, &al)
		})
		if err != nil {
			run.say("  alert %d not sent: %v", k, err)
			continue
		}
		run.mu.Lock()
		run.alerts = append(run.alerts, chaosAlertSent{id: al.ID, sent: sent, expires: al.ExpiresAt})
		run.mu.Unlock()
	}
}

// drain waits, with every fault over, until each alert ended or expired
// and each scheduled programme had time to play, and the receivers' last
// events reached the controller.
func (run *chaosRun) drain(ctx context.Context) {
	end := time.Now()
	for _, a := range run.alerts {
		end = maxTime(end, a.expires.Add(5*time.Second))
	}
	for _, s := range run.schedules {
		end = maxTime(end, s.at.Add(chaosProgramme+20*time.Second))
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		if run.settled(ctx) {
			break
		}
		sleepCtx(ctx, time.Second)
	}
	sleepCtx(ctx, 3*time.Second) // the receivers' finished events on their way
}

// settled reports whether every alert ended and every scheduled programme
// was started and ended.
func (run *chaosRun) settled(ctx context.Context) bool {
	for _, a := range run.alerts {
		var al loa.Alert
		if err := run.api.JSON(ctx, "GET", "/api/v1/alerts/"+a.id, nil, &al); err != nil || al.State == loa.AlertActive {
			return false
		}
	}
	var sessions []*loa.Session
	if err := run.api.JSON(ctx, "GET", "/api/v1/sessions", nil, &sessions); err != nil {
		return false
	}
	ended := map[string]bool{}
	for _, s := range sessions {
		if s.Origin.Kind == loa.OriginSchedule && s.State != loa.SessionPlaying {
			ended[s.Origin.ID] = true
		} else if s.State == loa.SessionPlaying {
			return false
		}
	}
	for _, s := range run.schedules {
		if !ended[s.id] && time.Now().Before(s.at.Add(chaosProgramme+20*time.Second)) {
			return false
		}
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// check reads the receivers' records, the controller's sessions, play log
// and records, prints what it found and returns the figures.
func (run *chaosRun) check(ctx context.Context) (map[string]any, error) {
	c := run.api
	var sessions []*loa.Session
	if err := c.JSON(ctx, "GET", "/api/v1/sessions", nil, &sessions); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	origin := map[string]loa.Origin{} // by session id
	for _, s := range sessions {
		origin[s.ID] = s.Origin
	}
	at := map[string]time.Time{} // occurrence by schedule id
	for _, s := range run.schedules {
		at[s.id] = s.at
	}
	var problems []string
	problem := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	// Records lost: every write answered 2xx is still there.
	lost := 0
	exists := func(path string) bool {
		gone := false
		err := retry(ctx, time.Now().Add(30*time.Second), func(ctx context.Context) error {
			err := c.JSON(ctx, "GET", path, nil, nil)
			var ce *api.ClientError
			if errors.As(err, &ce) && ce.Status == 404 {
				gone = true
				return nil
			}
			return err
		})
		return err == nil && !gone
	}
	for _, s := range run.schedules {
		if !exists("/api/v1/schedules/" + s.id) {
			lost++
			problem("record lost: schedule %s (created with 2xx)", s.id)
		}
	}
	for _, a := range run.alerts {
		if !exists("/api/v1/alerts/" + a.id) {
			lost++
			problem("record lost: alert %s (sent with 2xx)", a.id)
		}
	}

	// The play log's aired lines, by device and session.
	aired := map[string]map[string]bool{}
	from := url.QueryEscape(run.t0.Add(-time.Minute).UTC().Format(time.RFC3339))
	for _, id := range run.rx.ids {
		var entries []loa.PlayLogEntry
		if err := c.JSON(ctx, "GET", "/api/v1/playlog?device="+id+"&limit=1000&from="+from, nil, &entries); err != nil {
			return nil, fmt.Errorf("play log of %s: %w", id, err)
		}
		aired[id] = map[string]bool{}
		for _, e := range entries {
			if e.Event == loa.PlayAired && slices.Contains(e.Devices, id) {
				aired[id][e.SessionID] = true
			}
		}
	}

	doubles, early, mismatches := 0, 0, 0
	delivered := map[string]int{}   // alert id → receivers that played it to the end
	missed := map[string][]string{} // alert id → receivers that did not, and what they played
	eligible := map[string]int{}
	for _, id := range run.rx.ids {
		rec := run.rx.record(id)
		for sid, parts := range rec {
			o, known := origin[sid]
			played := false
			var first time.Time
			var fromPacket uint64
			for _, p := range parts {
				if !p.FirstPlayed.IsZero() {
					played = true
					if first.IsZero() || p.FirstPlayed.Before(first) {
						first = p.FirstPlayed
					}
				}
				fromPacket += p.FromPacket()
			}
			if !played {
				continue
			}
			if !known {
				mismatches++
				problem("log mismatch: %s played session %s, which the controller does not list", id, sid)
				continue
			}
			if !aired[id][sid] {
				mismatches++
				problem("log mismatch: %s played session %s (%s) from %s; the play log has no aired line", id, sid, o, first.Format(time.TimeOnly+".000"))
			}
			frames := run.programme.Frames
			if o.Kind == loa.OriginAlert {
				frames = run.bulletin.Frames
			}
			if fromPacket > uint64(frames)+5 {
				doubles++
				problem("double play: %s played %d frames of the %d-frame session %s (%s) in %d parts", id, fromPacket, frames, sid, o, len(parts))
			}
			if o.Kind == loa.OriginSchedule {
				if t, ok := at[o.ID]; ok && first.Before(t) {
					early++
					problem("early start: %s played %s %v before its time %s", id, o, t.Sub(first), t.Format(time.TimeOnly))
				}
			}
		}
		// A schedule occurrence, or an alert, played whole in two sessions
		// (a part cut short and then played whole is not a double play).
		byOrigin := map[loa.Origin][]string{}
		for sid, parts := range rec {
			o := origin[sid]
			frames := run.programme.Frames
			if o.Kind == loa.OriginAlert {
				frames = run.bulletin.Frames
			}
			if (o.Kind == loa.OriginSchedule || o.Kind == loa.OriginAlert) &&
				slices.ContainsFunc(parts, func(p firmwaresim.SessionStats) bool { return playedWhole(p, frames) }) {
				byOrigin[o] = append(byOrigin[o], sid)
			}
		}
		for o, sids := range byOrigin {
			if len(sids) > 1 {
				doubles++
				problem("double play: %s played %s to its end in sessions %v", id, o, sids)
			}
		}
		// Aired lines without the receiver's evidence.
		for sid := range aired[id] {
			if parts, ok := rec[sid]; !ok || !anyPlayed(parts) {
				mismatches++
				problem("log mismatch: the play log says %s aired session %s (%s); the receiver never played it", id, sid, origin[sid])
			}
		}
		// Alerts: played to the end (a part ended by its end, not cut, and
		// about every frame played) by every receiver alive between send
		// and expiry, in whichever of the alert's sessions reached it.
		for _, a := range run.alerts {
			if !run.rx.aliveDuring(id, a.sent, a.expires) {
				continue
			}
			eligible[a.id]++
			var parts []firmwaresim.SessionStats
			for sid, ps := range rec {
				if origin[sid] == (loa.Origin{Kind: loa.OriginAlert, ID: a.id}) {
					parts = append(parts, ps...)
				}
			}
			var playedFrames uint64
			for _, p := range parts {
				playedFrames += heard(p)
			}
			if slices.ContainsFunc(parts, endedByItsEnd) && playedFrames+10 >= uint64(run.bulletin.Frames) {
				delivered[a.id]++
				continue
			}
			var got []string
			for _, p := range parts {
				got = append(got, fmt.Sprintf("%s after %d frames", p.EndReason, p.Played))
			}
			missed[a.id] = append(missed[a.id], fmt.Sprintf("%s: parts %v (%s)", id, got, run.rx.describe(id, run.t0)))
		}
	}
	// Each scheduled programme: how many receivers played it, and how
	// late its first frame was (figures, not harm: a start missed beyond
	// -grace is logged missed by design).
	unplayed := 0
	for _, sc := range run.schedules {
		n, whole := 0, 0
		var firsts []float64
		for _, id := range run.rx.ids {
			var first time.Time
			played, ended := false, false
			for sid, parts := range run.rx.record(id) {
				if origin[sid] != (loa.Origin{Kind: loa.OriginSchedule, ID: sc.id}) {
					continue
				}
				for _, p := range parts {
					if !p.FirstPlayed.IsZero() && (first.IsZero() || p.FirstPlayed.Before(first)) {
						first, played = p.FirstPlayed, true
					}
					ended = ended || playedWhole(p, run.programme.Frames)
				}
			}
			if played {
				n++
				firsts = append(firsts, ms(first.Sub(sc.at)))
			}
			if ended {
				whole++
			}
		}
		if n == 0 {
			unplayed++
		}
		run.say("schedule %s at %.1fs: played by %d receivers (%d to its end), first frame after its time p50 %.0f ms, max %.0f ms",
			sc.id, sc.at.Sub(run.t0).Seconds(), n, whole, pct(firsts, 50), pct(firsts, 100))
	}
	fully := 0
	for _, a := range run.alerts {
		if eligible[a.id] > 0 && delivered[a.id] == eligible[a.id] {
			fully++
		}
		run.say("alert %s sent at %.1fs: played to the end by %d of %d receivers alive before its expiry", a.id, a.sent.Sub(run.t0).Seconds(), delivered[a.id], eligible[a.id])
		if m := missed[a.id]; len(m) > 0 {
			var al loa.Alert
			report := "its record unreadable"
			if err := c.JSON(ctx, "GET", "/api/v1/alerts/"+a.id, nil, &al); err == nil {
				states := map[string]int{}
				for _, d := range al.Report {
					states[d.State+"/"+d.Reason]++
				}
				report = fmt.Sprintf("the controller says %s (%q), deliveries %v", al.State, al.Reason, states)
			}
			problem("alert %s (sent at %.1fs, expiring at %.1fs) not played to the end by %d of %d receivers; %s; e.g. %s",
				a.id, a.sent.Sub(run.t0).Seconds(), a.expires.Sub(run.t0).Seconds(), len(m), eligible[a.id], report, strings.Join(m[:min(3, len(m))], "; "))
		}
	}
	sort.Strings(problems)
	for i, p := range problems {
		if i == 30 {
			run.say("… and %d more", len(problems)-i)
			break
		}
		run.say("HARM %s", p)
	}
	for _, f := range run.failed {
		run.say("fault not injected: %s", f)
	}
	total := 0
	for _, k := range faultKinds {
		total += run.counts[k]
	}
	res := map[string]any{
		"faults": total, "controller_kills": run.counts[faultControllerKill], "broker_kills": run.counts[faultBrokerKill],
		"clock_steps": run.steps, "receiver_reboots": run.counts[faultReceiverReboot], "loss_bursts": run.counts[faultLossBurst],
		"faults_failed": len(run.failed), "controller_start_retries": run.ctl.exitsAtStart, "receivers": run.o.Receivers, "seed": run.o.Seed,
		"schedules": len(run.schedules), "schedules_unplayed": unplayed, "sessions": len(sessions),
		"alerts": len(run.alerts), "alerts_fully_delivered": fully, "alerts_not_delivered": len(run.alerts) - fully,
		"double_plays": doubles, "early_starts": early, "log_mismatches": mismatches, "records_lost": lost,
	}
	run.say("bench chaos: %d faults (%d controller kills, %d broker kills, %d clock steps, %d receiver reboots, %d loss bursts); %d schedules, %d alerts",
		total, res["controller_kills"], res["broker_kills"], res["clock_steps"], res["receiver_reboots"], res["loss_bursts"], len(run.schedules), len(run.alerts))
	run.say("harm: %d of %d alerts not fully delivered, %d double plays, %d early starts, %d play-log mismatches, %d records lost",
		len(run.alerts)-fully, len(run.alerts), doubles, early, mismatches, lost)
	return res, nil
}

// endedByItsEnd reports whether a part ended at the stream's end (its BYE
// or end_frame), not cut short.
func endedByItsEnd(p firmwaresim.SessionStats) bool {
	return p.EndReason == firmwaresim.EndBye || p.EndReason == firmwaresim.EndEndFrame
}

// heard is what a part played of the stream's audio: every frame but the
// silence a receiver plays once a gap outlasts concealment (a stream that
// died mid-way still "ends" at its end_frame, in silence).
func heard(p firmwaresim.SessionStats) uint64 { return p.Played - min(p.Silence, p.Played) }

// playedWhole reports whether a part ended at the stream's end with about
// every one of its frames heard.
func playedWhole(p firmwaresim.SessionStats, frames int) bool {
	return endedByItsEnd(p) && heard(p)+uint64(max(5, frames/50)) >= uint64(frames)
}

// anyPlayed reports whether a part of a session played a frame.
func anyPlayed(parts []firmwaresim.SessionStats) bool {
	return slices.ContainsFunc(parts, func(p firmwaresim.SessionStats) bool { return !p.FirstPlayed.IsZero() })
}
