package station

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Delivery: one report per session, whatever started it (manual,
// schedule, fallback, alert, resumed), one line per targeted receiver:
// queued → acked (its play ack) → started (its played event, or RTCP
// progress) → finished | stopped | failed (reason). Lines change in
// memory under Sessions.mu and are written in batches, only when a state,
// reason or stat that matters changes (never per RTCP report); a session's
// report leaves memory once it is final and written.

// delivery is one session's report while it runs or settles; guarded by
// Sessions.mu.
type delivery struct {
	frames  int  // the programme's length (0: unknown, a loop)
	resumed bool // played again after a restart: its finished stats cover only part
	lines   map[string]*deliveryLine
	ended   string // the session's end state, once ended
	dirty   map[string]bool
}

// deliveryLine is one receiver's line and what it is decided from.
type deliveryLine struct {
	loa.ReceiverDelivery
	finished  bool      // a finished event with frames played came
	rtpPlay   uint64    // packets received in its current play, per its reports
	rtpBefore uint64    // packets received in its earlier plays
	rtpSince  time.Time // its first RTCP progress, not yet taken as evidence
	offStart  bool      // offline when the session started (its tune waits)
}

// track starts sess's report, before the engine tunes anyone. A resumed
// session continues the lines stored before the restart.
func (s *Sessions) track(ctx context.Context, sess *loa.Session, frames int, resumed bool) {
	now := time.Now().UTC()
	d := &delivery{frames: frames, resumed: resumed, lines: make(map[string]*deliveryLine, len(sess.Devices)), dirty: map[string]bool{}}
	if resumed {
		stored, err := s.db.Deliveries(ctx, sess.ID)
		if err != nil {
			s.logger.Warn("delivery report not read back", "session", sess.ID, "err", err)
		}
		for _, l := range stored {
			d.lines[l.Device] = &deliveryLine{ReceiverDelivery: l, finished: l.Played > l.Silence, rtpBefore: l.RTPReceived}
		}
	}
	for _, id := range sess.Devices {
		if d.lines[id] == nil {
			d.lines[id] = &deliveryLine{ReceiverDelivery: loa.ReceiverDelivery{Device: id, State: loa.DeliveryQueued, QueuedAt: now}}
			d.dirty[id] = true
		}
	}
	s.mu.Lock()
	if s.deliveries == nil {
		s.deliveries = make(map[string]*delivery)
	}
	s.deliveries[sess.ID] = d
	s.flushLocked()
	s.mu.Unlock()
}

// untrack writes what changed of a report and forgets it: the controller
// stops (the session resumes after the restart, and its report with it),
// or the engine refused to resume it.
func (s *Sessions) untrack(id string) {
	s.mu.Lock()
	d := s.deliveries[id]
	delete(s.deliveries, id)
	var lines []loa.ReceiverDelivery
	if d != nil {
		// Every line, with the RTCP counts written only with changes.
		for _, l := range d.lines {
			lines = append(lines, l.ReceiverDelivery)
		}
	}
	s.mu.Unlock()
	if err := s.db.PutDeliveries(context.Background(), map[string][]loa.ReceiverDelivery{id: lines}); err != nil {
		s.logger.Error("delivery report not written", "session", id, "err", err)
	}
}

// lineLocked returns the live report of session id and its line of device; s.mu held.
func (s *Sessions) lineLocked(id, device string) (*delivery, *deliveryLine) {
	d := s.deliveries[id]
	if d == nil {
		return nil, nil
	}
	return d, d.lines[device]
}

// revisable reports whether a failure decided while the session runs may
// still be corrected by the receiver: a late ack or evidence, a preempted
// receiver tuned back.
func (l *deliveryLine) revisable() bool {
	return l.State == loa.DeliveryFailed && (l.Reason == loa.ReasonNoAck || l.Reason == loa.ReasonPreempted ||
		l.Reason == loa.ReasonOffline || l.Reason == loa.ReasonNoStream)
}

// open reports whether l may still change: not final, or a revisable
// failure of a session still running.
func (d *delivery) open(l *deliveryLine) bool {
	return !l.Final() || (d.ended == "" && l.revisable())
}

// tuned is told the outcome of every play command the engine sends.
func (s *Sessions) tuned(id, device string, err error) {
	if errors.Is(err, context.Canceled) {
		return // superseded by a newer decision of the engine
	}
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, l := s.lineLocked(id, device)
	if l == nil || !d.open(l) {
		return
	}
	now := time.Now().UTC()
	switch {
	case err == nil:
		if l.State == loa.DeliveryQueued || l.State == loa.DeliveryFailed {
			l.State, l.Reason, l.Detail = loa.DeliveryAcked, "", ""
		}
		l.AckedAt = now
	case loa.ErrorCode(err) == loa.ETIMEOUT:
		if l.State == loa.DeliveryQueued {
			l.State, l.Reason, l.EndedAt = loa.DeliveryFailed, loa.ReasonNoAck, now
		}
	case loa.ErrorCode(err) == loa.EUNAVAILABLE:
		// Offline, or the broker link down: the engine sends it again
		// when it is back; it waits, queued.
		if l.State == loa.DeliveryQueued {
			l.Reason = loa.ReasonOffline
		}
	default:
		l.State, l.Reason, l.Detail, l.EndedAt = loa.DeliveryFailed, loa.ReasonRefused, truncate(loa.ErrorMessage(err), 200), now
	}
	s.changedLocked(id, d, device, false)
	s.flushLocked()
}

// offlineAtStart marks the receivers offline when the session started:
// they wait, queued (the engine tunes one that comes back); one never
// back gets its missed line when the report settles.
func (s *Sessions) offlineAtStart(id string, devices []string) {
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dev := range devices {
		if d, l := s.lineLocked(id, dev); l != nil && l.State == loa.DeliveryQueued {
			l.Reason, l.offStart = loa.ReasonOffline, true
			s.changedLocked(id, d, dev, false)
		}
	}
	s.flushLocked()
}

// deliveryEvent follows a receiver's played and finished events.
func (s *Sessions) deliveryEvent(device string, ev protocol.Event) {
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, l := s.lineLocked(ev.Session, device)
	if d == nil && ev.Type == protocol.EventFinished && ev.Stream != nil && ev.Stream.Played > 0 {
		// Its report settled before the event came (a congested broker, a
		// receiver's queue stalled by a reconnect): its stats still count.
		s.lateQ = append(s.lateQ, lateFinish{session: ev.Session, device: device, stats: *ev.Stream})
		s.flushLocked()
		return
	}
	if l == nil {
		return
	}
	if !d.open(l) && ev.Type != protocol.EventFinished {
		// Nothing changes, but the receiver is still talking: the
		// watcher's settling may wait for it.
		s.tellLocked(lineChange{session: ev.Session, line: l.ReceiverDelivery, heard: true, ended: true})
		return
	}
	at := time.UnixMilli(ev.TS).UTC()
	now := time.Now().UTC()
	switch ev.Type {
	case protocol.EventPlayed:
		if l.AckedAt.IsZero() {
			l.AckedAt = now // the ack and the event race on different goroutines
		}
		if l.StartedAt.IsZero() || l.Evidence == loa.EvidenceRTCP {
			l.StartedAt = at
		}
		l.State, l.Reason, l.Detail, l.EndedAt, l.Evidence = loa.DeliveryStarted, "", "", time.Time{}, loa.EvidenceEvent
	case protocol.EventFinished:
		if ev.Stream == nil {
			return
		}
		// The stats of every play add up (a preempted receiver tuned back,
		// a resume), whatever the line's state.
		l.Played += ev.Stream.Played
		l.Lost += ev.Stream.Lost
		l.Silence += ev.Stream.Silence
		if ev.Stream.Played > ev.Stream.Silence {
			l.finished, l.Evidence = true, loa.EvidenceEvent
			if l.StartedAt.IsZero() {
				l.StartedAt = at
			}
			if d.open(l) {
				l.State, l.Reason, l.Detail, l.EndedAt = loa.DeliveryStarted, "", "", at
				if d.ended != "" {
					s.settleLine(d, l, now)
				}
			}
		}
	}
	s.changedLocked(ev.Session, d, device, true)
	s.flushLocked()
}

// rtcpGrace is how long RTCP progress waits for the receiver's own played
// event before it counts as evidence: packets arrive a playout delay
// before they play, and a receiver that sends events tells more. With a
// report every 2 s, the second report with progress decides.
const rtcpGrace = 1500 * time.Millisecond

// Reception follows the engine's RTCP evidence: a receiver whose reports
// keep saying packets arrived, and that sent no played event meanwhile,
// has started (a v1 or third-party receiver, or one whose MQTT is down
// while RTP works). The count is kept in memory and written with the
// line's next change, never per report.
func (s *Sessions) Reception(id, device string, received uint64) {
	s.mu.Lock()
	d, l := s.lineLocked(id, device)
	if l == nil {
		s.mu.Unlock()
		return
	}
	if received < l.rtpPlay {
		l.rtpBefore += l.rtpPlay // a new play of it: its count starts over
	}
	l.rtpPlay = received
	l.RTPReceived = l.rtpBefore + l.rtpPlay
	first := false
	now := time.Now().UTC()
	// Not for a receiver that reports by events, nor one taken by a
	// higher session (a report in flight when it was taken).
	if received > 0 && d.open(l) && l.State != loa.DeliveryStarted && !l.finished && d.ended == "" &&
		l.Evidence != loa.EvidenceEvent && l.Reason != loa.ReasonPreempted {
		if l.rtpSince.IsZero() {
			l.rtpSince = now
		} else if now.Sub(l.rtpSince) >= rtcpGrace {
			startRTCP(l)
			s.changedLocked(id, d, device, false)
			first = true
			s.flushLocked()
		}
	}
	s.mu.Unlock()
	if first {
		s.tell()
		s.air(id, device, fmt.Sprintf("told by its RTCP receiver reports: %d packets received", received))
	}
}

// startRTCP makes l started on its RTCP progress; s.mu held.
func startRTCP(l *deliveryLine) {
	if l.AckedAt.IsZero() {
		l.AckedAt = l.rtpSince
	}
	l.State, l.Reason, l.Detail, l.StartedAt, l.EndedAt, l.Evidence = loa.DeliveryStarted, "", "", l.rtpSince, time.Time{}, loa.EvidenceRTCP
}

// deliveryPreempted fails the lines of the receivers a higher session took
// (revised if it is tuned back).
func (s *Sessions) deliveryPreempted(id string, devices []string, by string) {
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	for _, dev := range devices {
		d, l := s.lineLocked(id, dev)
		if l == nil || l.Final() {
			continue
		}
		l.State, l.Reason, l.Detail, l.EndedAt = loa.DeliveryFailed, loa.ReasonPreempted, "by session "+by, now
		s.changedLocked(id, d, dev, false)
	}
	s.flushLocked()
}

// deliveryEnded records the session's end; the lines settle after the
// receivers had time to report (settleDelivery).
func (s *Sessions) deliveryEnded(id, state string) {
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.deliveries[id]; d != nil {
		d.ended = state
		now := time.Now().UTC()
		for dev, l := range d.lines {
			// A finished receiver is settled at once; the others wait.
			if l.finished && !l.Final() {
				s.settleLine(d, l, now)
				s.changedLocked(id, d, dev, false)
			}
		}
		s.flushLocked()
	}
}

// settleLine decides l's final state after its session ended; s.mu held.
func (s *Sessions) settleLine(d *delivery, l *deliveryLine, now time.Time) {
	if l.EndedAt.IsZero() {
		l.EndedAt = now
	}
	if !l.Final() && l.State != loa.DeliveryStarted && !l.finished && !l.rtpSince.IsZero() && l.Evidence != loa.EvidenceEvent {
		startRTCP(l) // its reports said packets arrived, and no event came
		l.EndedAt = now
	}
	switch {
	case d.ended == loa.SessionStopped:
		l.State, l.Reason = loa.DeliveryStopped, ""
	case l.Final():
	case d.ended == loa.SessionFailed && l.State == loa.DeliveryStarted && !l.finished:
		l.State, l.Reason = loa.DeliveryFailed, loa.ReasonFailed
	case l.State == loa.DeliveryStarted && !l.finished && l.Evidence == loa.EvidenceRTCP:
		l.State = loa.DeliveryFinished // its reports are all there is
	case l.State == loa.DeliveryStarted && !l.finished && l.RTPReceived == 0:
		l.State, l.Reason = loa.DeliveryFailed, loa.ReasonNoReport
	case l.State == loa.DeliveryStarted:
		l.State = loa.DeliveryFinished
		tolerance := uint64(max(5, d.frames/50))
		if played := l.Played - min(l.Silence, l.Played); l.finished && d.frames > 0 && !d.resumed && d.ended == loa.SessionEnded &&
			played+tolerance < uint64(d.frames) {
			l.State, l.Reason, l.Detail = loa.DeliveryFailed, loa.ReasonPartial, fmt.Sprintf("played %d of %d frames", played, d.frames)
		}
	case l.State == loa.DeliveryAcked:
		l.State, l.Reason = loa.DeliveryFailed, loa.ReasonNoStream
	case l.State == loa.DeliveryQueued && l.Reason == loa.ReasonOffline:
		l.State = loa.DeliveryFailed
	case l.State == loa.DeliveryQueued:
		l.State, l.Reason = loa.DeliveryFailed, loa.ReasonNoAck
	}
}

// closeDelivery settles the stored report of a session that ended while
// the controller was down (or was not resumed): what its receivers
// reported before stands, the rest is decided by its end state. The
// caller wrote the session's play log line.
func (s *Sessions) closeDelivery(ctx context.Context, sess *loa.Session) {
	s.track(ctx, sess, 0, true)
	s.deliveryEnded(sess.ID, sess.State)
	s.settle(sess.ID, sess, false)
}

// offlineMissed is the missed line of receivers offline when a session
// started and not back before its end.
const offlineMissed = "offline when it started and not back before its end: not tuned"

// settleDelivery settles every line of an ended session, writes them and
// the failures' play log lines, and lets the report go from memory; sess
// nil (it could not be read) only lets it go.
func (s *Sessions) settleDelivery(id string, sess *loa.Session) { s.settle(id, sess, true) }

// settle is settleDelivery; logFailures false writes no play log line
// (the caller wrote the session's).
func (s *Sessions) settle(id string, sess *loa.Session, logFailures bool) {
	defer s.tell()
	if sess == nil {
		s.untrack(id)
		return
	}
	s.mu.Lock()
	d := s.deliveries[id]
	if d == nil {
		s.mu.Unlock()
		return
	}
	now := time.Now().UTC()
	missed := map[string][]string{} // reason → receivers that never played
	failed := map[string][]string{} // reason → receivers that started and failed
	var aired []string              // receivers whose RTCP evidence is taken now
	for dev, l := range d.lines {
		if !l.Final() {
			rtcp := l.Evidence == ""
			s.settleLine(d, l, now)
			if rtcp && l.Evidence == loa.EvidenceRTCP {
				aired = append(aired, dev)
			}
			s.changedLocked(id, d, dev, false)
		}
		if l.State != loa.DeliveryFailed || l.Reason == loa.ReasonPreempted {
			continue
		}
		if l.StartedAt.IsZero() {
			why := "delivery: " + l.Reason
			if l.Reason == loa.ReasonOffline && l.offStart {
				why = offlineMissed
			}
			missed[why] = append(missed[why], dev)
		} else {
			failed[l.Reason] = append(failed[l.Reason], dev)
		}
	}
	// Every line once more, final, with its last RTCP count.
	clear(d.dirty)
	lines := make([]loa.ReceiverDelivery, 0, len(d.lines))
	for _, l := range d.lines {
		lines = append(lines, l.ReceiverDelivery)
	}
	s.mu.Unlock()
	for _, dev := range aired {
		s.air(id, dev, "told by its RTCP receiver reports at the session's end")
	}
	ctx := context.Background()
	if err := s.db.PutDeliveries(ctx, map[string][]loa.ReceiverDelivery{sess.ID: lines}); err != nil {
		s.logger.Error("delivery report not written", "session", sess.ID, "err", err)
	}
	var entries []loa.PlayLogEntry
	for _, r := range slices.Sorted(maps.Keys(missed)) {
		entries = append(entries, logEntry(sess, loa.PlayMissed, slices.Sorted(slices.Values(missed[r])), r))
	}
	for _, r := range slices.Sorted(maps.Keys(failed)) {
		entries = append(entries, logEntry(sess, loa.PlayFailed, slices.Sorted(slices.Values(failed[r])), "delivery: "+r))
	}
	if !logFailures {
		entries = nil
	}
	if err := s.db.AppendPlayLog(ctx, entries...); err != nil {
		s.logger.Error("delivery failures not logged", "session", sess.ID, "err", err)
	}
	s.mu.Lock()
	if s.deliveries[sess.ID] == d {
		// Lines written meanwhile by the flusher are in the store too.
		if len(d.dirty) > 0 {
			rest := d.takeDirty()
			s.mu.Unlock()
			if err := s.db.PutDeliveries(ctx, map[string][]loa.ReceiverDelivery{sess.ID: rest}); err != nil {
				s.logger.Error("delivery report not written", "session", sess.ID, "err", err)
			}
			s.mu.Lock()
		}
		delete(s.deliveries, sess.ID)
	}
	s.mu.Unlock()
}

// lineChange is a change of one line of a session's report, told to the
// report's watcher (the alerts' view of their sessions' lines).
type lineChange struct {
	session string
	line    loa.ReceiverDelivery
	heard   bool // the receiver's own played or finished event changed it
	ended   bool // its session had ended: only its stats still change
}

// watchLines has fn told every change of a line, in the order the lines
// changed, before the call that changed it returns (fn may not change a
// line itself).
func (s *Sessions) watchLines(fn func(lineChange)) {
	s.mu.Lock()
	s.onLine = fn
	s.mu.Unlock()
}

// changedLocked marks device's line of session id changed: it is written
// with the next batch, and told to the watcher; s.mu held.
func (s *Sessions) changedLocked(id string, d *delivery, device string, heard bool) {
	d.dirty[device] = true
	s.tellLocked(lineChange{session: id, line: d.lines[device].ReceiverDelivery, heard: heard, ended: d.ended != ""})
}

// tellLocked queues c for the watcher; s.mu held.
func (s *Sessions) tellLocked(c lineChange) {
	if s.onLine != nil {
		s.lineQ = append(s.lineQ, c)
	}
}

// tell tells the watcher the queued changes; every call that changes a
// line calls it after letting s.mu go. The changes leave the queue in
// order, and one teller at a time tells them, so the watcher sees them in
// order, and a caller's own change is told when tell returns.
func (s *Sessions) tell() {
	s.tellMu.Lock()
	defer s.tellMu.Unlock()
	s.mu.Lock()
	q, fn := s.lineQ, s.onLine
	s.lineQ = nil
	s.mu.Unlock()
	for _, c := range q {
		fn(c)
	}
}

// takeDirty returns copies of the changed lines and clears the set.
func (d *delivery) takeDirty() []loa.ReceiverDelivery {
	out := make([]loa.ReceiverDelivery, 0, len(d.dirty))
	for dev := range d.dirty {
		out = append(out, d.lines[dev].ReceiverDelivery)
	}
	clear(d.dirty)
	return out
}

// lateFinish is a finished event for a report no longer in memory.
type lateFinish struct {
	session, device string
	stats           protocol.StreamStats
}

// addLate adds late finished events' stats to their stored lines; lines
// never stored (a session of another controller, a stranger) are left.
func (s *Sessions) addLate(ctx context.Context, late []lateFinish) {
	defer s.tell()
	batch := map[string][]loa.ReceiverDelivery{}
	for _, f := range late {
		lines, err := s.db.Deliveries(ctx, f.session)
		if err != nil {
			s.logger.Warn("late finished event not recorded", "session", f.session, "device", f.device, "err", err)
			continue
		}
		i := slices.IndexFunc(lines, func(l loa.ReceiverDelivery) bool { return l.Device == f.device })
		if i < 0 {
			continue
		}
		l := &lines[i]
		for _, b := range batch[f.session] { // an earlier event of the batch
			if b.Device == f.device {
				*l = b
			}
		}
		l.Played += f.stats.Played
		l.Lost += f.stats.Lost
		l.Silence += f.stats.Silence
		if f.stats.Played > f.stats.Silence {
			l.Evidence = loa.EvidenceEvent
		}
		batch[f.session] = append(slices.DeleteFunc(batch[f.session], func(b loa.ReceiverDelivery) bool { return b.Device == f.device }), *l)
		s.mu.Lock()
		s.tellLocked(lineChange{session: f.session, line: *l, heard: true, ended: true})
		s.mu.Unlock()
	}
	if err := s.db.PutDeliveries(ctx, batch); err != nil {
		s.logger.Error("late finished events not recorded", "err", err)
	}
}

// flushLocked has the changed lines written, off the caller's goroutine
// (the fleet's notifier, the engine's RTCP reader); s.mu held.
func (s *Sessions) flushLocked() {
	if !s.flushingDelivery {
		s.flushingDelivery = true
		go s.flushDeliveries()
	}
}

// flushDeliveries writes the changed lines of every report, a batch per
// transaction, until none is left.
func (s *Sessions) flushDeliveries() {
	for {
		s.mu.Lock()
		batch := map[string][]loa.ReceiverDelivery{}
		for id, d := range s.deliveries {
			if len(d.dirty) > 0 {
				batch[id] = d.takeDirty()
			}
		}
		late := s.lateQ
		s.lateQ = nil
		if len(batch) == 0 && len(late) == 0 {
			s.flushingDelivery = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if len(late) > 0 {
			s.addLate(context.Background(), late)
		}
		if err := s.db.PutDeliveries(context.Background(), batch); err != nil {
			s.logger.Error("delivery report not written", "sessions", len(batch), "err", err)
		}
	}
}

var _ loa.DeliveryService = (*Sessions)(nil)

// SessionDelivery returns a session's report: live while it runs or
// settles, from the store after.
func (s *Sessions) SessionDelivery(ctx context.Context, id string) ([]loa.ReceiverDelivery, error) {
	if _, err := s.db.Session(ctx, id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if d := s.deliveries[id]; d != nil {
		out := make([]loa.ReceiverDelivery, 0, len(d.lines))
		for _, l := range d.lines {
			out = append(out, l.ReceiverDelivery)
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b loa.ReceiverDelivery) int { return strings.Compare(a.Device, b.Device) })
		return out, nil
	}
	s.mu.Unlock()
	out, err := s.db.Deliveries(ctx, id)
	if err != nil {
		return nil, err
	}
	return out, nil
}
