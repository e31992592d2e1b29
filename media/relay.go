package media

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// RelayOptions configure a relay of an external stream; zero fields take
// the defaults.
type RelayOptions struct {
	URLs []string // the source, then its backups, in order
	// Fallback opens what plays when every URL has failed (an area's
	// fallback or a chosen media item); nil: silence.
	Fallback    func() (loa.PacketSource, io.Closer, error)
	SilenceDB   float64       // below it the source is silent; default -50 dBFS
	SilenceFor  time.Duration // silence this long fails over; default 5 s
	StallFor    time.Duration // no data this long fails over; default SilenceFor
	ReturnAfter time.Duration // the primary sounding this long is returned to; default 3 s
	Buffer      time.Duration // decoded audio held against jitter and drift; default 500 ms
	Check       time.Duration // how often the failover looks; default 200 ms
	Bitrate     int           // the station's Opus profile; default DefaultBitrate
	TargetLUFS  float64       // default DefaultTargetLUFS
	FFmpeg      string        // the ffmpeg binary; default "ffmpeg"
	// OnSwitch is told every switch of source (from its own goroutine).
	OnSwitch func(RelaySwitch)
	Logger   *slog.Logger
}

// RelayFallback is the index of the fallback in RelaySwitch and RelayState.
const RelayFallback = -1

// RelaySwitch is one change of a relay's source.
type RelaySwitch struct {
	From, To       int    // URL indexes; RelayFallback for the fallback
	FromURL, ToURL string // empty for the fallback
	Reason         string // "stalled", "silent", "returned"
	At             time.Time
}

// RelayState is what a relay plays now.
type RelayState struct {
	Current   int     `json:"current"`         // index of the URL playing; RelayFallback on the fallback
	URL       string  `json:"url,omitempty"`   // the URL playing
	Codec     string  `json:"codec,omitempty"` // of the source, as ffmpeg named it
	KbitS     int     `json:"kbit_s,omitempty"`
	LevelDB   float64 `json:"level_db"` // RMS of the source's last 20 ms, dBFS (-120 for nothing)
	Failovers int     `json:"failovers"`
	Since     time.Time
}

// Relay decodes an external stream with supervised ffmpeg children,
// normalises its loudness, encodes it once with the station's Opus
// profile and hands the packets to a session (a loa.PacketSource that
// always has a packet: silence while starved). It fails over to the next
// URL when the playing one stalls or falls silent, then to the fallback,
// and back to the primary when it sounds again.
type Relay struct {
	opt    RelayOptions
	buf    *driftBuffer
	enc    *opus.Encoder
	norm   *normaliser
	frame  []float32
	pkt    []byte
	silent []byte

	mu        sync.Mutex
	inputs    map[int]*relayInput
	current   int
	since     time.Time
	failovers int
	fallback  loa.PacketSource
	fbClose   io.Closer
	closed    bool

	stop chan struct{}
	done chan struct{}
}

// StartRelay starts decoding the first URL and the failover's watch.
func StartRelay(opt RelayOptions) (*Relay, error) {
	if len(opt.URLs) == 0 {
		return nil, loa.Errorf(loa.EINVALID, "urls: name at least one")
	}
	if opt.SilenceDB == 0 {
		opt.SilenceDB = -50
	}
	if opt.SilenceFor <= 0 {
		opt.SilenceFor = 5 * time.Second
	}
	if opt.StallFor <= 0 {
		opt.StallFor = opt.SilenceFor
	}
	if opt.ReturnAfter <= 0 {
		opt.ReturnAfter = 3 * time.Second
	}
	if opt.Buffer <= 0 {
		opt.Buffer = 500 * time.Millisecond
	}
	if opt.Check <= 0 {
		opt.Check = 200 * time.Millisecond
	}
	if opt.Bitrate <= 0 {
		opt.Bitrate = DefaultBitrate
	}
	if opt.TargetLUFS == 0 {
		opt.TargetLUFS = DefaultTargetLUFS
	}
	if opt.FFmpeg == "" {
		opt.FFmpeg = "ffmpeg"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	enc, err := newEncoder(opt.Bitrate)
	if err != nil {
		return nil, err
	}
	silent, err := SilencePacket()
	if err != nil {
		return nil, err
	}
	r := &Relay{opt: opt, enc: enc, norm: newNormaliser(opt.TargetLUFS),
		buf:   newDriftBuffer(int(opt.Buffer.Seconds() * protocol.ClockRate)),
		frame: make([]float32, protocol.FrameSamples), pkt: make([]byte, maxPacketBytes), silent: silent,
		inputs: make(map[int]*relayInput), since: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	r.startInputLocked(0)
	r.mu.Unlock()
	go r.watch()
	return r, nil
}

func (r *Relay) startInputLocked(i int) {
	if r.inputs[i] != nil {
		return
	}
	r.inputs[i] = startRelayInput(r.opt.URLs[i], r.opt.FFmpeg, r.opt.SilenceDB, r.opt.Logger, func(pcm []float32) {
		r.mu.Lock()
		cur := r.current == i
		r.mu.Unlock()
		if cur {
			r.buf.write(pcm)
		}
	})
}

// Next returns the next 20 ms packet: the source's, the fallback's, or
// silence while the buffer primes or starves.
func (r *Relay) Next() ([]byte, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, io.EOF
	}
	fb := r.fallback
	r.mu.Unlock()
	if fb != nil {
		pkt, err := fb.Next()
		if err == nil {
			return pkt, nil
		}
		r.reopenFallback(fb, err)
		return r.silent, nil
	}
	if !r.buf.read(r.frame) {
		clear(r.frame)
	}
	pcm := r.norm.process(r.frame)
	n, err := r.enc.EncodeFloat32(pcm, r.pkt)
	if err != nil {
		return nil, fmt.Errorf("media: relay opus encode: %w", err)
	}
	return r.pkt[:n], nil
}

// reopenFallback starts the fallback over at its end (it loops while the
// sources are down).
func (r *Relay) reopenFallback(fb loa.PacketSource, cause error) {
	if !errors.Is(cause, io.EOF) {
		r.opt.Logger.Warn("relay fallback failed", "err", cause)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fallback != fb {
		return
	}
	if r.fbClose != nil {
		r.fbClose.Close()
	}
	r.fallback, r.fbClose = nil, nil
	if r.opt.Fallback == nil {
		r.fallback = &silenceSource{r.silent}
		return
	}
	src, c, err := r.opt.Fallback()
	if err != nil {
		r.opt.Logger.Warn("relay fallback cannot be opened", "err", err)
		src, c = &silenceSource{r.silent}, nil
	}
	r.fallback, r.fbClose = src, c
}

type silenceSource struct{ pkt []byte }

func (s *silenceSource) Next() ([]byte, error) { return s.pkt, nil }

// State reports what plays now.
func (r *Relay) State() RelayState {
	r.mu.Lock()
	st := RelayState{Current: r.current, Failovers: r.failovers, Since: r.since, LevelDB: -120}
	in := r.inputs[r.current]
	if r.current >= 0 {
		st.URL = r.opt.URLs[r.current]
	}
	r.mu.Unlock()
	if in != nil {
		h := in.health()
		st.Codec, st.KbitS = h.codec, h.kbps
		if !math.IsInf(h.levelDB, 0) && time.Since(h.lastData) < time.Second {
			st.LevelDB = math.Max(math.Round(h.levelDB*10)/10, -120)
		}
	}
	return st
}

// Close stops every ffmpeg child and the watch; Next then returns io.EOF.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	r.mu.Lock()
	inputs := r.inputs
	r.inputs = map[int]*relayInput{}
	fb := r.fbClose
	r.fbClose = nil
	r.mu.Unlock()
	for _, in := range inputs { // outside the lock: their readers take it
		in.stop()
	}
	if fb != nil {
		fb.Close()
	}
	return nil
}

// watch fails over and back.
func (r *Relay) watch() {
	defer close(r.done)
	t := time.NewTicker(r.opt.Check)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.check(now)
		}
	}
}

func (r *Relay) check(now time.Time) {
	r.mu.Lock()
	cur := r.current
	var curH inputHealth
	if in := r.inputs[cur]; in != nil {
		curH = in.health()
	}
	var primary inputHealth
	if in := r.inputs[0]; in != nil {
		primary = in.health()
	}
	r.mu.Unlock()

	if cur != 0 && primary.good(now, r.opt.ReturnAfter) {
		r.switchTo(cur, 0, "returned", now)
		return
	}
	if cur == RelayFallback {
		return
	}
	if failed, why := curH.failed(now, r.opt.StallFor, r.opt.SilenceFor); failed {
		next := cur + 1
		if next >= len(r.opt.URLs) {
			next = RelayFallback
		}
		r.switchTo(cur, next, why, now)
	}
}

// switchTo makes to the source playing. The primary's child keeps running
// whatever plays (it is the probe that brings the relay back); a backup's
// is stopped when left.
func (r *Relay) switchTo(from, to int, why string, now time.Time) {
	var stop *relayInput
	r.mu.Lock()
	r.current, r.since = to, now
	if to != 0 {
		r.failovers++
	}
	if from > 0 {
		stop = r.inputs[from]
		delete(r.inputs, from)
	}
	if to >= 0 {
		r.startInputLocked(to)
		if in := r.inputs[to]; in != nil && to > 0 {
			in.mu.Lock()
			in.started = now // judged from now
			in.mu.Unlock()
		}
		if r.fbClose != nil {
			r.fbClose.Close()
		}
		r.fallback, r.fbClose = nil, nil
	} else {
		r.fallback = &silenceSource{r.silent} // replaced by the real fallback just below
	}
	fb := r.fallback
	r.mu.Unlock()
	r.buf.reset()
	if to == RelayFallback {
		r.reopenFallback(fb, io.EOF)
	}
	if stop != nil {
		go stop.stop()
	}
	sw := RelaySwitch{From: from, To: to, Reason: why, At: now}
	if from >= 0 {
		sw.FromURL = r.opt.URLs[from]
	}
	if to >= 0 {
		sw.ToURL = r.opt.URLs[to]
	}
	r.opt.Logger.Info("relay switched source", "from", sw.FromURL, "to", sw.ToURL, "fallback", to == RelayFallback, "reason", why)
	if r.opt.OnSwitch != nil {
		r.opt.OnSwitch(sw)
	}
}

// normaliser brings a live stream to the target loudness: the gain
// follows the loudness (BS.1770, as uploads are measured) of the last few
// seconds, moving smoothly, capped at MaxGainDB, with the upload path's
// limiter keeping peaks under the ceiling.
type normaliser struct {
	target float64
	meter  *loudnessMeter
	gainDB float64 // applied now
	want   float64 // what the last window asks for
	lim    *limiter
	scaled []float32
	out    []float32
}

const normWindow = 3 * protocol.ClockRate // samples per loudness measurement

func newNormaliser(target float64) *normaliser {
	return &normaliser{target: target, meter: newLoudnessMeter(), lim: newLimiter(float32(math.Pow(10, CeilingDBFS/20)))}
}

// process returns pcm with gain and limiting; the result has pcm's length
// (the limiter's delay is carried across calls) and is reused.
func (n *normaliser) process(pcm []float32) []float32 {
	n.meter.add(pcm)
	if n.meter.n >= normWindow {
		if l := n.meter.integrated(); !math.IsInf(l, -1) {
			n.want = min(n.target-l, MaxGainDB)
		}
		n.meter = newLoudnessMeter()
	}
	n.gainDB += (n.want - n.gainDB) * 0.05 // about 0.4 s
	g := float32(math.Pow(10, n.gainDB/20))
	n.scaled = n.scaled[:0]
	for _, v := range pcm {
		n.scaled = append(n.scaled, v*g)
	}
	n.out = n.lim.process(n.out[:0], n.scaled)
	if len(n.out) < len(pcm) { // the limiter's first call fills its look-ahead
		n.out = append(make([]float32, len(pcm)-len(n.out)), n.out...)
	}
	return n.out[:len(pcm)]
}
