package station

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// StationAlarms raises and clears the controller's own alarms (device
// empty); devices.Alarms implements it.
type StationAlarms interface {
	RaiseStation(kind, severity string, value, threshold float64, msg string)
	ClearStation(kind, why string)
}

// audienceSettle is how long after a session ended its receivers have to
// report before it is judged heard by nobody: a finished event can follow
// the end by the playout delay and a broker round trip.
const audienceSettle = 3 * time.Second

// audience is the evidence of one session's receivers, from their own
// events; guarded by Sessions.mu.
type audience struct {
	sess    *loa.Session
	targets []string        // its receivers (sorted)
	aired   map[string]bool // the receivers with evidence (a played event, or a finished one with frames played)
	lost    map[string]bool // the receivers a higher session took
}

// follow starts collecting sess's receivers' evidence, before the engine
// tunes them (a played event may come before the start is logged).
func (s *Sessions) follow(sess *loa.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audiences == nil {
		s.audiences = make(map[string]*audience)
	}
	cp := *sess
	s.audiences[sess.ID] = &audience{sess: &cp, targets: slices.Sorted(slices.Values(sess.Devices)), aired: map[string]bool{}, lost: map[string]bool{}}
}

// Following reports how many sessions' evidence is being collected: the
// running ones and those settling after their end.
func (s *Sessions) Following() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.audiences)
}

// HandleEvent follows the receivers' played and finished events (the
// same ones alerts read, from one subscription to the fleet): a receiver's
// first evidence of playing a session writes its "aired" play log line.
func (s *Sessions) HandleEvent(device string, ev protocol.Event) {
	detail := ""
	switch ev.Type {
	case protocol.EventPlayed:
		s.deliveryEvent(device, ev)
	case protocol.EventFromCache:
		s.airedFromCache(device, ev) // offline.go
		s.deliveryFromCache(device, ev)
		return
	case protocol.EventFinished:
		s.deliveryEvent(device, ev)
		if ev.Stream == nil || ev.Stream.Played <= ev.Stream.Silence {
			return // stats of a stream that never played: no evidence
		}
		detail = fmt.Sprintf("told by its finished event: %d frames played", ev.Stream.Played-ev.Stream.Silence)
	default:
		return
	}
	s.air(ev.Session, device, detail)
}

// air writes device's "aired" line for session id on its first evidence
// (detail says which, when not its played event).
func (s *Sessions) air(id, device, detail string) {
	s.mu.Lock()
	a := s.audiences[id]
	if a == nil || a.aired[device] {
		s.mu.Unlock()
		return
	}
	if _, ok := slices.BinarySearch(a.targets, device); !ok {
		s.mu.Unlock()
		return
	}
	a.aired[device] = true
	sess := a.sess
	e := logEntry(sess, loa.PlayAired, []string{device}, detail)
	e.At = time.Now().UTC() // when it was told, whenever the batch is written
	// Written in batches off the fleet's notifier goroutine: a commit per
	// receiver there would hold up every subscriber (the alerts' clock).
	s.airedQ = append(s.airedQ, e)
	if !s.flushing {
		s.flushing = true
		go s.flushAired()
	}
	s.mu.Unlock()
	if s.Alarms != nil {
		s.Alarms.ClearStation(loa.AlarmNoAudience, fmt.Sprintf("session %s heard by %s", sess.ID, device))
	}
}

// flushAired writes the queued aired lines, a batch per transaction,
// until the queue is empty.
func (s *Sessions) flushAired() {
	for {
		s.mu.Lock()
		batch := s.airedQ
		s.airedQ = nil
		if len(batch) == 0 {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err := s.db.AppendPlayLog(context.Background(), batch...); err != nil {
			s.logger.Error("aired lines not written", "lines", len(batch), "err", err)
		}
	}
}

// judge decides, once its receivers had time to report, whether a session
// that ended reached anyone: one that streamed to at least one receiver
// tuned (online at its start, not taken by a higher session) and was heard
// by none raises no_audience.
func (s *Sessions) judge(id string, sess *loa.Session, tuned []string, streamed bool) {
	judge := func() {
		s.settleDelivery(id, sess)
		s.mu.Lock()
		a := s.audiences[id]
		delete(s.audiences, id)
		s.mu.Unlock()
		if a == nil || len(a.aired) > 0 || !streamed {
			return
		}
		tuned := slices.DeleteFunc(slices.Clone(tuned), func(d string) bool { return a.lost[d] })
		if len(tuned) == 0 {
			return
		}
		msg := fmt.Sprintf("session %s (%s) reached no receiver: none of its %d tuned receivers reported playing it", id, a.sess.Origin.String(), len(tuned))
		s.logger.Warn("session heard by nobody", "session", id, "origin", a.sess.Origin.String(), "tuned", len(tuned))
		if s.Alarms != nil {
			s.Alarms.RaiseStation(loa.AlarmNoAudience, loa.SeverityCritical, 0, float64(len(tuned)), msg)
		}
	}
	settle := s.AudienceSettle
	if settle <= 0 {
		settle = audienceSettle
	}
	time.AfterFunc(settle, judge)
}
