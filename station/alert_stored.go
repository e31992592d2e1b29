package station

import (
	"context"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// An alert with a stored_code reaches the receivers that hold that stored
// message (by their last manifest's ack or telemetry, at the library's
// current version) as a play_stored command: they play it from their own
// storage at once, whatever the media path, and their played and
// finished events, under a session id of the alert's own (a storedRun),
// make their report lines, channel "stored". The others get the stream as
// for any alert; a receiver that refuses play_stored (no longer holding
// it, or without the cache) joins them through a late session.

// storedRun is the part of an alert played from the receivers' storage.
type storedRun struct {
	code    int
	sha     string
	frames  int // the message's 20 ms frames
	repeats int
}

// SetStored makes alerts with a stored_code use the receivers' storage.
func (s *Alerts) SetStored(st *Stored) { s.stored = st }

// storedContent looks up a's stored message; an alert that names no
// content plays that message's media to the receivers that get a stream.
func (s *Alerts) storedContent(ctx context.Context, a *loa.Alert) (*loa.StoredMessage, error) {
	if a.StoredCode == 0 {
		return nil, nil
	}
	m, err := s.db.StoredMessage(ctx, a.StoredCode)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, loa.Errorf(loa.EINVALID, "stored_code: no stored message %d", a.StoredCode)
	}
	if err != nil {
		return nil, err
	}
	if a.Content.MediaID == "" && a.Content.Text == "" {
		a.Content.MediaID = m.MediaID
	}
	return m, nil
}

// splitStored splits the online targets into those that get the stream
// and those that hold msg and play it from storage.
func (s *Alerts) splitStored(a *loa.Alert, msg *loa.StoredMessage, online []string) (stream, fromStore []string) {
	if msg == nil || s.stored == nil {
		return online, nil
	}
	version, err := s.stored.Version(context.Background())
	if err != nil {
		s.logger.Warn("stored message version unknown: streaming to every receiver", "alert", a.ID, "err", err)
		return online, nil
	}
	for _, id := range online {
		if s.stored.Holds(id, msg.Code, version) {
			fromStore = append(fromStore, id)
		} else {
			stream = append(stream, id)
		}
	}
	return stream, fromStore
}

func (s *Alerts) newStoredRun(a *loa.Alert, m *loa.StoredMessage) *alertRun {
	return &alertRun{id: newID(), stored: &storedRun{code: m.Code, sha: m.SHA256, frames: max(m.Frames, 1), repeats: max(a.Repeats, 1)}}
}

// attachStoredLocked makes run carry devices of l; s.mu must be held.
func (s *Alerts) attachStoredLocked(l *liveAlert, run *alertRun, devices []string) {
	l.runs[run.id] = run
	s.bySession[run.id] = l
	for _, id := range devices {
		tr := l.dev[id]
		tr.session, tr.pending, tr.back, tr.blockedBy, tr.played, tr.preempted = run.id, false, false, "", 0, false
		tr.offline, tr.boot = false, 0
		if st, ok := s.fleet.DeviceState(id); ok {
			tr.boot = st.Boot
		}
		l.a.Report[l.idx[id]].Channel = loa.ChannelStored
	}
}

// playStored sends each device its play_stored command.
func (s *Alerts) playStored(l *liveAlert, run *alertRun, devices []string) {
	s.mu.Lock()
	a := l.a
	args := protocol.PlayStoredArgs{Session: run.id, Code: run.stored.code, SHA256: run.stored.sha,
		Priority: uint8(a.Priority()), Repeats: run.stored.repeats, UntilMs: a.ExpiresAt.UnixMilli()}
	if a.Priority().Emergency() {
		args.Volume = a.Volume
	}
	s.mu.Unlock()
	for _, id := range devices {
		go func() {
			ack, err := s.stored.cmd.SendOp(context.Background(), id, protocol.OpPlayStored, args)
			s.storedAcked(l, run, id, ack, err)
		}()
	}
	s.logger.Info("alert played from storage", "alert", a.ID, "session", run.id, "code", run.stored.code, "devices", len(devices))
}

// lateStoredLocked takes, once the late batch is due, the receivers back
// online that hold l's stored message out of it: they get a stored run of
// their own (late), to be played once s.mu is released; lateLocked
// streams the rest.
func (s *Alerts) lateStoredLocked(l *liveAlert, now time.Time) (*alertRun, []string) {
	m := l.storedMsg
	if m == nil || s.stored == nil || l.lateDue.IsZero() || now.Before(l.lateDue) || l.a.State != loa.AlertActive {
		return nil, nil
	}
	version, err := s.stored.Version(context.Background())
	if err != nil {
		return nil, nil
	}
	var devs []string
	for id, tr := range l.dev {
		if !tr.back || tr.noStored {
			continue
		}
		if r := l.runs[tr.blockedBy]; r != nil && r.endedAt.IsZero() {
			continue // lateLocked waits for it
		}
		if s.stored.Holds(id, m.Code, version) {
			devs = append(devs, id)
		}
	}
	if len(devs) == 0 {
		return nil, nil
	}
	slices.Sort(devs)
	run := s.newStoredRun(l.a, m)
	run.late = true
	s.attachStoredLocked(l, run, devs)
	for _, id := range devs {
		d := &l.a.Report[l.idx[id]]
		d.State, d.Reason, d.Late, d.AckedAt, d.StartedAt = loa.DeliveryQueued, "", true, time.Time{}, time.Time{}
	}
	l.changedLocked()
	return run, devs
}

// storedAcked takes a play_stored's final ack: acked; or, refused for
// want of the message, the device joins the stream in a late session;
// out of reach, it waits to come back; otherwise it is refused.
func (s *Alerts) storedAcked(l *liveAlert, run *alertRun, id string, ack protocol.Ack, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := l.dev[id]
	if tr == nil || tr.session != run.id {
		return
	}
	d := &l.a.Report[l.idx[id]]
	if finalDelivery(d) || d.State == loa.DeliveryStarted {
		return
	}
	now := time.Now()
	switch {
	case err == nil:
		if d.State == loa.DeliveryQueued {
			d.State, d.AckedAt, d.Reason = loa.DeliveryAcked, now.UTC(), ""
		}
		tr.ackedAt = now
	case ack.Code == protocol.StoredNotCached || ack.Code == "unsupported" || ack.Code == protocol.StoredBusy:
		// Stream it instead.
		d.State, d.Reason, d.Channel, d.Detail = loa.DeliveryQueued, "", "", ""
		tr.session, tr.pending, tr.back, tr.noStored = "", true, true, true
		if l.lateDue.IsZero() {
			l.lateDue = now.Add(s.lateWait)
		}
		s.logger.Info("stored message not played from storage; streaming it", "alert", l.a.ID, "device", id, "code", ack.Code)
	case unreachable(err) || !s.online(id):
		d.State, d.Reason, d.Channel = loa.DeliveryQueued, loa.ReasonOffline, ""
		tr.session, tr.pending = "", true
	case ack.State == "":
		l.fail(d, loa.ReasonNoAck, now.UTC())
	default:
		l.fail(d, loa.ReasonRefused, now.UTC())
		d.Detail = truncate(loa.ErrorMessage(err), 200)
	}
	l.changedLocked()
	s.poke()
}

// storedEvent takes a receiver's played and finished events of a stored
// run: started at its first frame, finished when it played every repeat
// (its own count of frames), partial otherwise.
func (s *Alerts) storedEvent(id string, ev protocol.Event) {
	if ev.Session == "" || (ev.Type != protocol.EventPlayed && ev.Type != protocol.EventFinished) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.bySession[ev.Session]
	if l == nil {
		return
	}
	r := l.runs[ev.Session]
	tr := l.dev[id]
	if r == nil || r.stored == nil || tr == nil || tr.session != r.id {
		return
	}
	d := &l.a.Report[l.idx[id]]
	if finalDelivery(d) && !(l.a.State == loa.AlertActive && revisable(d)) {
		return
	}
	now := time.Now()
	r.heard = now
	at := time.UnixMilli(ev.TS).UTC()
	if ev.TS <= 0 {
		at = now.UTC()
	}
	if d.AckedAt.IsZero() {
		d.AckedAt = now.UTC()
	}
	switch ev.Type {
	case protocol.EventPlayed:
		if d.State != loa.DeliveryFinished {
			d.State, d.Reason, d.EndedAt = loa.DeliveryStarted, "", time.Time{}
		}
		if d.StartedAt.IsZero() {
			d.StartedAt = at
		}
	case protocol.EventFinished:
		var played uint64
		if st := ev.Stream; st != nil {
			played = st.Played - min(st.Silence, st.Played)
		}
		tr.played = played
		sr := r.stored
		whole := uint64(sr.frames * sr.repeats)
		if played+uint64(max(5, int(whole)/50)) >= whole {
			d.State, d.Reason, d.EndedAt, d.Repeats = loa.DeliveryFinished, "", at, l.a.Repeats
		} else {
			d.Repeats = int(played / uint64(sr.frames))
			l.fail(d, loa.ReasonPartial, at)
		}
	}
	l.changedLocked()
	s.poke()
}

// settleStoredLocked fails a receiver that acked play_stored but played
// nothing in time (no_stream), and ends a stored run once every receiver
// it still carries has settled.
func (s *Alerts) settleStoredLocked(l *liveAlert, now time.Time) {
	changed := false
	for _, r := range l.runs {
		if r.stored == nil || !r.endedAt.IsZero() {
			continue
		}
		open := false
		for id, tr := range l.dev {
			if tr.session != r.id {
				continue
			}
			d := &l.a.Report[l.idx[id]]
			if d.State == loa.DeliveryAcked && !tr.ackedAt.IsZero() && now.Sub(tr.ackedAt) > s.delay+s.noStream {
				l.fail(d, loa.ReasonNoStream, now.UTC())
				changed = true
			}
			if !finalDelivery(d) {
				open = true
			}
		}
		if !open {
			r.endedAt, r.state = now, loa.SessionEnded
			changed = true
		}
	}
	if changed {
		l.changedLocked()
	}
}

// endStoredLocked ends l's stored runs (expiry, cancel: the receivers
// stop on their own at until_ms, or are told to) and returns the sessions
// still streaming.
func (s *Alerts) endStoredLocked(l *liveAlert, now time.Time) []string {
	for _, r := range l.runs {
		if r.stored != nil && r.endedAt.IsZero() {
			r.endedAt, r.state = now, loa.SessionStopped
		}
	}
	return l.running()
}

// storedPlay is a receiver playing a stored run.
type storedPlay struct{ device, session string }

// storedPlaying lists the receivers of l's stored runs still running.
func (l *liveAlert) storedPlaying() []storedPlay {
	var out []storedPlay
	for id, tr := range l.dev {
		if r := l.runs[tr.session]; r != nil && r.stored != nil && r.endedAt.IsZero() {
			out = append(out, storedPlay{id, r.id})
		}
	}
	return out
}

// untuneStored tells receivers to stop a stored run.
func (s *Alerts) untuneStored(plays []storedPlay, why string) {
	if s.stored == nil {
		return
	}
	for _, p := range plays {
		go func() {
			if _, err := s.stored.cmd.SendOp(context.Background(), p.device, protocol.OpStop, protocol.StopArgs{Session: p.session}); err != nil {
				s.logger.Warn("stored play not stopped", "device", p.device, "session", p.session, "why", why, "err", err)
			}
		}()
	}
}
