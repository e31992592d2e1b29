package live

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/loa-broadcast/loa"
)

// Why an uplink ended.
const (
	ReasonLost   = "uplink lost"   // no audio for UplinkTimeout, or ICE failed
	ReasonClosed = "uplink closed" // the client closed its peer connection
	ReasonEnded  = "ended"         // Close: the session ended, or the client's DELETE
)

// reportInterval is how often the client gets a Receiver Report.
const reportInterval = time.Second

// Uplink is one client's audio: a loa.PacketSource of 20 ms frames on the
// controller's timeline, to be handed to the audio engine.
type Uplink struct {
	s    *Server
	pc   *webrtc.PeerConnection
	opts Options
	ssrc uint32 // of our Receiver Reports

	mu    sync.Mutex
	buf   *buffer
	tc    *transcoder // once a packet could not be forwarded
	tcSeq uint16      // the transcoder's frames' own sequence
	stats recvStats   // of the uplink, for its Receiver Reports
	last  time.Time   // the last packet's arrival
	media uint32      // the client's SSRC, once its track came
	lsr   uint32      // the middle of its last Sender Report's NTP time
	lsrAt time.Time

	transcoded atomic.Bool
	done       chan struct{}
	endOnce    sync.Once
	reason     string // set once, before done closes
}

func newUplink(s *Server, pc *webrtc.PeerConnection, opts Options) *Uplink {
	u := &Uplink{s: s, pc: pc, opts: opts, ssrc: rand.Uint32() | 1, buf: newBuffer(s.cfg.Depth), last: time.Now(), done: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		u.mu.Lock()
		u.media = uint32(tr.SSRC())
		u.mu.Unlock()
		go u.read(tr)
		go u.readRTCP(r)
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed:
			u.end(ReasonLost)
		case webrtc.PeerConnectionStateClosed:
			u.end(ReasonClosed)
		}
	})
	return u
}

// Next gives the frame due now: the client's Opus packet as it came (or
// transcoded), or loa.ErrGap. It never blocks; after the uplink ended it
// gives gaps until the session is stopped.
func (u *Uplink) Next() ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tc != nil && u.opts.Loss != nil {
		u.tc.setLoss(lossPercent(u.opts.Loss()))
	}
	return u.buf.pull()
}

// Done is closed when the uplink ends; Reason then says why.
func (u *Uplink) Done() <-chan struct{} { return u.done }

// Reason is why the uplink ended ("" while it runs).
func (u *Uplink) Reason() string {
	select {
	case <-u.done:
		return u.reason
	default:
		return ""
	}
}

// Transcoded reports whether the uplink's Opus had to be decoded and
// encoded again (it was not 20 ms mono).
func (u *Uplink) Transcoded() bool { return u.transcoded.Load() }

// Stats are what the buffer did with the uplink's packets.
type Stats struct {
	Received, Late, Lost, Dropped, Inserted int
}

// Stats reports the buffer's counts.
func (u *Uplink) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.buf.stats
	return Stats{Received: st.Received, Late: st.Late, Lost: st.Lost, Dropped: st.Dropped, Inserted: st.Inserted}
}

// Close ends the uplink and its peer connection.
func (u *Uplink) Close() error {
	u.end(ReasonEnded)
	return nil
}

// end records why the uplink ended, once, and closes the connection.
func (u *Uplink) end(reason string) {
	u.endOnce.Do(func() {
		u.reason = reason
		st := u.Stats()
		// Counted before Done says so: whoever waits on Done reads the
		// metrics and the server's list as they are after the end.
		u.s.forget(u, st, reason)
		close(u.done)
		go u.pc.Close() // not from pion's own callbacks' goroutine
		u.s.log.Info("live uplink ended", "reason", reason, "received", st.Received, "lost", st.Lost, "late", st.Late,
			"dropped", st.Dropped, "inserted", st.Inserted, "transcoded", u.Transcoded())
	})
}

// read takes the client's RTP into the buffer until the track ends.
func (u *Uplink) read(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		u.packet(&p, time.Now())
	}
}

// packet files one uplink packet.
func (u *Uplink) packet(p *rtp.Packet, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = at
	u.stats.update(p.SequenceNumber, p.Timestamp, at)
	if len(p.Payload) == 0 {
		return // padding only: the frame is a gap
	}
	if u.tc == nil && forwardable(p.Payload) {
		u.buf.push(p.SequenceNumber, append([]byte(nil), p.Payload...))
		return
	}
	if u.tc == nil {
		tc, err := newTranscoder()
		if err != nil {
			u.s.log.Error("live uplink cannot be transcoded", "err", err)
			return
		}
		u.tc, u.tcSeq = tc, u.buf.next
		u.buf.reset(u.tcSeq)
		u.transcoded.Store(true)
		u.s.log.Warn("live uplink's Opus is not 20 ms mono: transcoding it")
	}
	frames, err := u.tc.add(p.Payload)
	if err != nil {
		u.s.log.Debug("live uplink packet not decoded", "err", err)
	}
	for _, f := range frames {
		u.buf.push(u.tcSeq, f)
		u.tcSeq++
	}
}

// readRTCP keeps the client's Sender Reports, for LSR/DLSR.
func (u *Uplink) readRTCP(r *webrtc.RTPReceiver) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				u.mu.Lock()
				u.lsr, u.lsrAt = uint32(sr.NTPTime>>16), time.Now()
				u.mu.Unlock()
			}
		}
	}
}

// watch sends Receiver Reports and ends the uplink once it is silent for
// too long.
func (u *Uplink) watch() {
	t := time.NewTicker(reportInterval / 4)
	defer t.Stop()
	started := time.Now()
	nextReport := started.Add(reportInterval)
	for {
		select {
		case <-u.done:
			return
		case now := <-t.C:
			u.mu.Lock()
			silent, media, got := now.Sub(u.last), u.media, u.stats.started
			u.mu.Unlock()
			limit := u.s.cfg.UplinkTimeout
			if !got {
				limit *= 2 // connecting
			}
			if silent > limit {
				u.end(ReasonLost)
				return
			}
			if got && !now.Before(nextReport) {
				nextReport = now.Add(reportInterval)
				if err := u.pc.WriteRTCP([]rtcp.Packet{u.report(media, now)}); err != nil {
					u.s.log.Debug("live receiver report not sent", "err", err)
				}
			}
		}
	}
}

// report is the Receiver Report about the uplink: its fraction lost is the
// larger of the uplink's own loss and the receivers' (Options.Loss), so
// the client's encoder adds the in-band FEC the receivers need.
func (u *Uplink) report(media uint32, now time.Time) *rtcp.ReceiverReport {
	u.mu.Lock()
	defer u.mu.Unlock()
	rr := u.stats.reception(media)
	if u.opts.Loss != nil {
		rr.FractionLost = max(rr.FractionLost, u.opts.Loss())
	}
	if !u.lsrAt.IsZero() {
		rr.LastSenderReport = u.lsr
		rr.Delay = uint32(now.Sub(u.lsrAt).Seconds() * 65536)
	}
	return &rtcp.ReceiverReport{SSRC: u.ssrc, Reports: []rtcp.ReceptionReport{rr}}
}

// lossPercent is an RTCP fraction lost in percent, for an encoder.
func lossPercent(f uint8) int { return (int(f)*100 + 255) / 256 }

// recvStats are RFC 3550 A.3 reception statistics of the uplink.
type recvStats struct {
	started            bool
	base, max          uint16
	cycles             uint32
	received           uint32
	expectedPrior      uint32
	receivedPrior      uint32
	transit            int64
	jitter             float64
	transitInitialised bool
}

func (s *recvStats) update(seq uint16, ts uint32, at time.Time) {
	if !s.started {
		s.started, s.base, s.max = true, seq, seq
	} else if d := int16(seq - s.max); d > 0 {
		if seq < s.max {
			s.cycles += 1 << 16
		}
		s.max = seq
	}
	s.received++
	// Interarrival jitter, in timestamp units (48 kHz).
	arrival := at.UnixNano() * 48 / 1e6
	transit := arrival - int64(ts)
	if s.transitInitialised {
		d := transit - s.transit
		if d < 0 {
			d = -d
		}
		s.jitter += (float64(d) - s.jitter) / 16
	}
	s.transit, s.transitInitialised = transit, true
}

// reception is the report block since the last one.
func (s *recvStats) reception(media uint32) rtcp.ReceptionReport {
	extMax := s.cycles + uint32(s.max)
	expected := extMax - uint32(s.base) + 1
	lost := int64(expected) - int64(s.received)
	expInt := expected - s.expectedPrior
	recInt := s.received - s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	var fraction uint8
	if lostInt := int64(expInt) - int64(recInt); expInt > 0 && lostInt > 0 {
		fraction = uint8(min(255, lostInt<<8/int64(expInt)))
	}
	return rtcp.ReceptionReport{
		SSRC: media, FractionLost: fraction, TotalLost: uint32(max(0, min(lost, 1<<23-1))),
		LastSequenceNumber: extMax, Jitter: uint32(s.jitter),
	}
}

var _ loa.PacketSource = (*Uplink)(nil)
