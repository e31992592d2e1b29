package firmwaresim

import (
	"math"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Exchange is one four-timestamp time exchange (RTCP XR RRTR → SR + DLRR):
// T1 (request sent) and T4 (answer received) on the receiver's clock, T2
// (request received) and T3 (answer sent) on the controller's.
type Exchange struct{ T1, T2, T3, T4 time.Time }

// Offset is θ, the controller's clock minus the receiver's: exact when the
// two legs take equally long, off by half their difference otherwise.
func (e Exchange) Offset() time.Duration { return (e.T2.Sub(e.T1) + e.T3.Sub(e.T4)) / 2 }

// Delay is δ, the round trip without the controller's turnaround.
func (e Exchange) Delay() time.Duration { return e.T4.Sub(e.T1) - e.T3.Sub(e.T2) }

// ExchangeFromDLRR makes the exchange of an answer: t1 is the RRTR's time
// as the receiver kept it (the answer's LRR names it), srNTP the answer's
// Sender Report NTP timestamp (T3), dlrr its DLRR (T3 − T2 in 1/65536 s)
// and t4 when it arrived.
func ExchangeFromDLRR(t1 time.Time, srNTP uint64, dlrr uint32, t4 time.Time) Exchange {
	t3 := ntpTime(srNTP)
	return Exchange{T1: t1, T2: t3.Add(-time.Duration(dlrr) * time.Second / 65536), T3: t3, T4: t4}
}

// NTPTimestamp is t as a 64-bit NTP timestamp.
func NTPTimestamp(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// Sync filter tuning. An exchange's θ is off by half the difference of
// its two legs' delays. The filter keeps the recent exchanges' two one-way
// readings, T2 − T1 = θ + up and T3 − T4 = θ − down, brought to the present
// with the estimated drift, and takes θ between the least of the first and
// the greatest of the second: each leg's minimum-delay filter, whose
// error is half the difference of the two legs' least jitter over the
// window, a fraction of a millisecond. A Kalman filter of offset and drift,
// weighting each exchange by its round trip above the least, estimates the
// drift, and a share of the offset (all of it for a reference clock, which
// has no legs).
const (
	syncWindow    = 128                   // exchanges kept: two minutes at one a second
	syncMinLegs   = 32                    // the least of them the one-way filter uses
	syncFloor     = time.Millisecond      // Kalman: error of an exchange at the least round trip
	syncSlope     = 0.3                   // Kalman: error per second of round trip above it
	syncDriftWalk = 0.05e-6               // drift random walk, s/s per √s
	syncPhaseWalk = 2e-6                  // offset random walk, s per √s
	syncStepSlack = 20 * time.Millisecond // beyond the physical bound, a step of a clock
	syncMaxRTT    = 2 * time.Second       // longer: a clock stepped during the exchange
	syncMaxDrift  = 100e-6                // drift prior's standard deviation
	syncMediaMin  = 20                    // seconds of stream before its drift is used
	// syncKalmanShare of the offset is the Kalman filter's: their errors
	// are partly independent.
	syncKalmanShare = 0.3
)

// leg is one exchange as the one-way filter keeps it: at local instant t,
// up = T2 − T1 and down = T3 − T4 (seconds), and its round trip.
type leg struct {
	t        time.Time
	up, down float64
	rtt      time.Duration
}

// SyncFilter estimates the controller's clock from the receiver's: offset
// θ and drift, from time exchanges (or a GNSS-like reference). It is the
// receiver's disciplined clock. Safe for concurrent use.
type SyncFilter struct {
	mu     sync.Mutex
	source string
	have   bool
	ref    time.Time // receiver-clock instant of x and theta
	x0, x1 float64   // Kalman: θ at ref (s) and its rate (s/s)
	p      [3]float64
	theta  float64 // the estimate of θ at ref the clock follows
	legs   []leg   // ring of the last syncWindow exchanges
	nLegs  int
	gen    uint64
	steps  int
	// media: the stream's packets as one-way readings of the down leg
	// (send instant on the timeline − arrival = θ − down), the greatest of
	// each second kept; their slope is the drift, far sooner than the
	// exchanges' (fifty readings a second against one).
	media  []bucket
	nMedia int
	cur    bucket
	curOK  bool
	mDrift float64 // slope of the media buckets, once syncMediaMin of them
	mOK    bool
}

// bucket is the greatest down-leg reading d of a second, at local t.
type bucket struct {
	t time.Time
	d float64
}

// NewSyncFilter returns an empty filter naming source in its reports
// (protocol.SyncRTCPXR, SyncGNSS, ...).
func NewSyncFilter(source string) *SyncFilter { return &SyncFilter{source: source} }

func syncSource(c ClockSpec) string {
	if c.GNSS {
		return protocol.SyncGNSS
	}
	return protocol.SyncRTCPXR
}

// AddExchange takes one exchange; it reports whether it was used.
func (f *SyncFilter) AddExchange(e Exchange) bool {
	rtt := e.Delay()
	if rtt < 0 || rtt > syncMaxRTT {
		return false // a clock stepped while it was under way
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	window := syncWindow
	mid := e.T1.Add(e.T4.Sub(e.T1) / 2)
	l := leg{t: mid, up: e.T2.Sub(e.T1).Seconds(), down: e.T3.Sub(e.T4).Seconds(), rtt: rtt}
	base := rtt
	for _, o := range f.legs {
		base = min(base, o.rtt)
	}
	// Until the window fills, its least round trip overstates the base:
	// trust every exchange less.
	floor := syncFloor.Seconds() * (1 + 16/float64(len(f.legs)+1))
	sigma := floor + syncSlope*(rtt-base).Seconds()
	if !f.update(mid, e.Offset().Seconds(), sigma, rtt.Seconds()/2) {
		// A step: the history is of another clock.
		f.legs, f.nLegs = f.legs[:0], 0
		f.media, f.nMedia, f.curOK, f.mOK = f.media[:0], 0, false, false
	}
	if len(f.legs) < window {
		f.legs = append(f.legs, l)
	} else {
		f.legs[f.nLegs%window] = l
	}
	f.nLegs++
	// Each leg's minimum, brought to mid with the drift, over the last
	// half of the history and at least syncMinLegs: while the drift is
	// young, old exchanges carry its error.
	hiUp, loDown := math.Inf(1), math.Inf(-1)
	use := min(len(f.legs), max(syncMinLegs, f.nLegs/2))
	if f.mOK {
		use = len(f.legs)
	}
	drift := f.drift()
	for i := range use {
		o := f.legs[(f.nLegs-1-i)%len(f.legs)]
		shift := drift * mid.Sub(o.t).Seconds()
		hiUp, loDown = min(hiUp, o.up+shift), max(loDown, o.down+shift)
	}
	// The stream's packets read the down leg too, fifty times as often,
	// unless they say the packets arrived before they left (θ − down above
	// θ + up: a controller sending ahead of its timeline); then they only
	// tell the drift.
	mediaDown := math.Inf(-1)
	for _, b := range f.media {
		mediaDown = max(mediaDown, b.d+drift*mid.Sub(b.t).Seconds())
	}
	if f.curOK {
		mediaDown = max(mediaDown, f.cur.d+drift*mid.Sub(f.cur.t).Seconds())
	}
	if mediaDown < hiUp {
		loDown = max(loDown, mediaDown)
	}
	f.theta = (1-syncKalmanShare)*(hiUp+loDown)/2 + syncKalmanShare*f.x0
	return true
}

// drift is the best estimate of θ's rate. f.mu is held.
func (f *SyncFilter) drift() float64 {
	if f.mOK {
		return f.mDrift
	}
	return f.x1
}

// AddMedia takes a packet of the stream that arrived at local (the
// receiver's clock) and was due to leave the controller at sent on the
// timeline: a reading of the down leg for the drift.
func (f *SyncFilter) AddMedia(local, sent time.Time) {
	d := sent.Sub(local).Seconds()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.curOK && local.Sub(f.cur.t) < time.Second && local.After(f.cur.t.Add(-time.Second)) {
		if d > f.cur.d {
			f.cur = bucket{t: local, d: d}
		}
		return
	}
	if f.curOK {
		if len(f.media) < syncWindow {
			f.media = append(f.media, f.cur)
		} else {
			f.media[f.nMedia%syncWindow] = f.cur
		}
		f.nMedia++
		f.fitMedia()
	}
	f.cur, f.curOK = bucket{t: local, d: d}, true
}

// fitMedia fits the drift to the media buckets by least squares. f.mu is
// held.
func (f *SyncFilter) fitMedia() {
	n := len(f.media)
	if n < syncMediaMin {
		return
	}
	t0 := f.media[0].t
	var st, sd float64
	for _, b := range f.media {
		st += b.t.Sub(t0).Seconds()
		sd += b.d
	}
	mt, md := st/float64(n), sd/float64(n)
	var stt, std float64
	for _, b := range f.media {
		x := b.t.Sub(t0).Seconds() - mt
		stt += x * x
		std += x * (b.d - md)
	}
	if stt > 0 {
		f.mDrift, f.mOK = std/stt, true
	}
}

// AddReference takes a reading of a reference clock of controller time
// (GNSS: UTC) ref, made at local on the receiver's clock, within errBound.
func (f *SyncFilter) AddReference(local, ref time.Time, errBound time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.update(local, ref.Sub(local).Seconds(), errBound.Seconds()/2, errBound.Seconds())
	f.theta = f.x0
}

// update is one Kalman step with measurement z of θ at local instant t,
// standard deviation sigma and physical error bound bound; it moves ref to
// t. It reports false when z showed a clock step and the filter started
// over from it. f.mu is held.
func (f *SyncFilter) update(t time.Time, z, sigma, bound float64) bool {
	r := sigma * sigma
	f.gen++
	if !f.have {
		f.have, f.ref, f.x0, f.x1 = true, t, z, 0
		f.p = [3]float64{r, 0, syncMaxDrift * syncMaxDrift}
		return true
	}
	dt := max(0, t.Sub(f.ref).Seconds()) // out of order by a hair: now
	x0 := f.x0 + f.x1*dt
	p00 := f.p[0] + 2*dt*f.p[1] + dt*dt*f.p[2] + syncPhaseWalk*syncPhaseWalk*dt
	p01 := f.p[1] + dt*f.p[2]
	p11 := f.p[2] + syncDriftWalk*syncDriftWalk*dt
	nu := z - x0
	if math.Abs(nu) > bound+3*math.Sqrt(p00)+syncStepSlack.Seconds() {
		// No path could give this measurement: a clock stepped. Start
		// over from it, keeping the drift.
		f.ref, f.x0 = t, z
		f.p = [3]float64{r, 0, p11}
		f.steps++
		return false
	}
	s := p00 + r
	k0, k1 := p00/s, p01/s
	f.ref, f.x0, f.x1 = t, x0+k0*nu, f.x1+k1*nu
	f.p = [3]float64{(1 - k0) * p00, (1 - k0) * p01, p11 - k1*p01}
	return true
}

// Controller is the controller's clock at local instant local of the
// receiver's clock; ok is false before the first measurement.
func (f *SyncFilter) Controller(local time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.have {
		return time.Time{}, false
	}
	return local.Add(seconds(f.theta + f.drift()*local.Sub(f.ref).Seconds())), true
}

// Gen counts the filter's updates: the disciplined clock moves only when it
// changes.
func (f *SyncFilter) Gen() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

// Steps counts the clock steps the filter re-synced on.
func (f *SyncFilter) Steps() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.steps
}

// Report is the filter's part of tele.sync; the play-out adds corrections
// and re-syncs.
func (f *SyncFilter) Report() protocol.SyncReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.have {
		return protocol.SyncReport{Source: protocol.SyncNone}
	}
	rep := protocol.SyncReport{Source: f.source, OffsetMs: -f.theta * 1e3, ErrMs: math.Sqrt(f.p[0]) * 1e3,
		DriftPPM: -f.drift() * 1e6, Resyncs: f.steps}
	if len(f.legs) > 0 {
		base := f.legs[0].rtt
		for _, o := range f.legs {
			base = min(base, o.rtt)
		}
		rep.RTTMs = float64(base) / 1e6
	}
	return rep
}

// PlayoutConfig tunes drift correction.
type PlayoutConfig struct {
	// Threshold is the error from which single samples are inserted or
	// removed: 100 µs by default, lower with a GNSS-like clock.
	Threshold time.Duration
	// MaxPPM bounds the corrections' rate: 500 by default.
	MaxPPM float64
	// Resync is the error above which the output jumps (hard re-sync):
	// 50 ms by default.
	Resync time.Duration
}

// Defaults of PlayoutConfig, and its threshold with a GNSS-like clock.
const (
	DefaultCorrectFrom = 100 * time.Microsecond
	GNSSCorrectFrom    = 25 * time.Microsecond
	DefaultMaxPPM      = 500
	DefaultResync      = 50 * time.Millisecond
)

// settleFor (seconds of output) is how long a session's play-out is placed
// anew, rather than corrected sample by sample, when it is off by more
// than settleJump.
const (
	settleFor  = 5
	settleJump = 5 * time.Millisecond
)

// holdoverLimit is how long the play-out rides through a jump of the
// disciplined clock the sync has not confirmed.
const holdoverLimit = 3 * time.Second

// discontinuity is how far the disciplined clock may move against the
// DAC's own count between two frames before the play-out distrusts it.
const discontinuity = 20 * time.Millisecond

// Playout places a session's samples on the virtual DAC against the
// disciplined clock: stream sample k (k samples after ts0) is handed to
// the DAC at origin + k/48 kHz on the controller's timeline, where origin
// = UTC(ts0) + D + offset_ms − output_delay. The first sample is placed
// exactly (samples dropped or silence padded); afterwards single samples
// are removed or repeated to follow the clock, and the output jumps only
// beyond Resync. Not safe for concurrent use.
type Playout struct {
	cfg     PlayoutConfig
	origin  time.Time
	started bool
	pos     int64   // stream sample handed to the DAC next; negative: silence before sample 0
	credit  float64 // corrections allowed now, earned at MaxPPM of the samples played
	dac     int64   // DAC samples so far
	lastNow time.Time
	lastN   int
	lastGen uint64
	hold    bool
	holdAt  int64 // DAC count when the holdover began
	corr    []int64
	// Corrections and Resyncs count the samples inserted or removed and
	// the hard re-syncs.
	Corrections, Resyncs int
}

// NewPlayout returns the play-out of a session whose stream sample 0 is
// handed to the DAC at controller time origin.
func NewPlayout(origin time.Time, cfg PlayoutConfig) *Playout {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultCorrectFrom
	}
	if cfg.MaxPPM <= 0 {
		cfg.MaxPPM = DefaultMaxPPM
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	return &Playout{cfg: cfg, origin: origin}
}

// Origin is the controller-time instant stream sample 0 is handed to the DAC.
func (p *Playout) Origin() time.Time { return p.origin }

// Frame is Start then Played(n): the DAC asks for n samples.
func (p *Playout) Frame(now time.Time, gen uint64, n int) (start int64) {
	start = p.Start(now, gen)
	p.Played(n)
	return start
}

// Start is called when the DAC asks for samples, with now the disciplined
// clock's reading at that instant and gen the sync filter's generation. It
// returns the stream sample to hand to the DAC first; Played tells how
// many followed.
func (p *Playout) Start(now time.Time, gen uint64) (start int64) {
	const rate = protocol.ClockRate
	errSamples := func(at time.Time) float64 {
		return at.Sub(p.origin).Seconds()*rate - float64(p.pos)
	}
	switch {
	case !p.started:
		p.started = true
		p.pos = int64(math.Round(errSamples(now))) // drop what is past, pad what is ahead
	default:
		// The disciplined clock should advance with the DAC. A jump the
		// sync did not make (its generation is unchanged) is the system
		// clock stepping: ride through on the DAC until the sync re-syncs.
		expect := p.lastNow.Add(time.Duration(p.lastN) * time.Second / rate)
		if jump := now.Sub(expect); !p.hold && gen == p.lastGen && (jump > discontinuity || jump < -discontinuity) {
			p.hold, p.holdAt = true, p.dac
		}
		if p.hold && (gen != p.lastGen || time.Duration(p.dac-p.holdAt)*time.Second/rate > holdoverLimit) {
			p.hold = false
		}
		if p.hold {
			now = expect
			break
		}
		e := errSamples(now)
		threshold := p.cfg.Threshold.Seconds() * rate
		switch {
		case math.Abs(e) > p.cfg.Resync.Seconds()*rate:
			p.pos += int64(math.Round(e))
			p.Resyncs++
		case p.dac < settleFor*rate && math.Abs(e) > settleJump.Seconds()*rate:
			// The first seconds follow a young sync (a receiver that just
			// joined, its first exchanges' errors shrinking): place anew
			// rather than drift back at 500 ppm for a minute.
			p.pos += int64(math.Round(e))
		case math.Abs(e) >= threshold && p.credit >= 1:
			if e > 0 {
				p.pos++ // late: skip a sample
			} else {
				p.pos-- // early: repeat one
			}
			p.credit--
			p.Corrections++
			p.corr = append(p.corr, p.dac)
		}
	}
	if !p.hold {
		p.lastGen = gen
	}
	p.lastNow = now
	return p.pos
}

// Played records that the DAC took n samples from the last Start.
func (p *Playout) Played(n int) {
	p.lastN = n
	p.pos += int64(n)
	p.credit = min(2, p.credit+float64(n)*p.cfg.MaxPPM*1e-6)
	p.dac += int64(n)
}

// CorrectionsPerMin counts the corrections of the last minute of output.
func (p *Playout) CorrectionsPerMin() int {
	from := p.dac - 60*protocol.ClockRate
	i := 0
	for i < len(p.corr) && p.corr[i] < from {
		i++
	}
	p.corr = p.corr[i:]
	return len(p.corr)
}
