package firmwaresim

import (
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Programmes from cache (contract: Programmes from cache): the receiver
// watches the programme items of its cache, and when an occurrence's
// stream has not come CacheGrace after its start it plays its copy on the
// occurrence's timeline, from the frame of the wall clock, and reports
// from_cache when the copy stops. A play of the session arriving later
// replaces the copy (command.go), so the stream takes over at the frame
// the copy reached: both place frame n at start + n·20 ms + the delay.

// programmeCheck is how often the receiver looks at its programmes: well
// within CacheGrace.
const programmeCheck = 200 * time.Millisecond

// programmes is the receiver's state of its cached programmes.
type programmes struct {
	mu    sync.Mutex
	metas map[string]protocol.ProgrammeMeta // by item sig: decoded once
	aired map[string]bool                   // sessions played from cache, or whose stream came
	log   []AiredFromCache
}

// AiredFromCache is a programme the receiver played from its cache
// (ground truth for tests and benches).
type AiredFromCache struct {
	Session, Occurrence string
	From                int       // the first frame of the programme played from the copy
	At                  time.Time // when frame From was due to play
	Stats               SessionStats
}

// AiredFromCache returns the programmes played from the cache so far,
// once each copy has stopped.
func (r *Receiver) AiredFromCache() []AiredFromCache {
	r.progs.mu.Lock()
	defer r.progs.mu.Unlock()
	return append([]AiredFromCache(nil), r.progs.log...)
}

// programmeLoop checks the cached programmes until Close or Kill.
func (r *Receiver) programmeLoop() {
	defer r.wg.Done()
	t := time.NewTicker(programmeCheck)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.checkProgrammes(time.Now())
		case <-r.quit:
			return
		}
	}
}

// checkProgrammes airs every cached programme that is due at now, whose
// stream has not come.
func (r *Receiver) checkProgrammes(now time.Time) {
	type due struct {
		key, sha string
		meta     protocol.ProgrammeMeta
	}
	var list []due
	r.cache.mu.Lock()
	r.cache.load(r)
	r.progs.mu.Lock()
	if r.progs.metas == nil {
		r.progs.metas, r.progs.aired = map[string]protocol.ProgrammeMeta{}, map[string]bool{}
	}
	for _, ci := range r.cache.items {
		it := ci.item
		if it.Kind != protocol.CacheKindProgramme {
			continue
		}
		m, ok := r.progs.metas[it.Sig]
		if !ok {
			var err error
			if m, err = protocol.DecodeProgrammeMeta(it.Meta); err != nil {
				r.log.Warn("programme item with a bad meta", "item", it.Ref(), "err", err)
			}
			r.progs.metas[it.Sig] = m // a bad one is kept zero, not decoded again
		}
		if m.Session == "" || r.progs.aired[m.Session] || now.Before(m.Start().Add(protocol.CacheGrace)) || !now.Before(m.End()) {
			continue
		}
		list = append(list, due{it.Key, it.SHA256, m})
	}
	r.progs.mu.Unlock()
	r.cache.mu.Unlock()
	for _, d := range list {
		r.airFromCache(d.key, d.sha, d.meta, now)
	}
}

// airFromCache plays the cached copy of occurrence m, unless its stream
// came (or comes while it plays: the play replaces the copy).
func (r *Receiver) airFromCache(key, sha string, m protocol.ProgrammeMeta, now time.Time) {
	if s := r.find(m.Session); s != nil && s.local == "" && s.snapshot().Received > 0 {
		r.progs.mu.Lock()
		r.progs.aired[m.Session] = true // the stream came: the copy is not needed
		r.progs.mu.Unlock()
		return
	}
	// A play of the session without a packet by now (a controller that
	// tuned it in its pre-roll, then stopped) is replaced by the copy.
	r.progs.mu.Lock()
	r.progs.aired[m.Session] = true
	r.progs.mu.Unlock()
	r.mu.Lock()
	delay := r.delay
	r.mu.Unlock()
	// The frame due now, on the timeline: its play time is now + the
	// playout delay, as a stream's packet arriving now would be.
	from := max(m.FrameAt(now), 0)
	at := m.Start().Add(time.Duration(from)*protocol.FrameDuration + delay)
	rec := AiredFromCache{Session: m.Session, Occurrence: m.Occurrence, From: from, At: at}
	p := LocalPlay{Session: m.Session, Kind: protocol.CacheKindProgramme, Key: key, SHA256: sha,
		Priority: m.Priority, From: from, At: at, OnEnd: func(st SessionStats) { r.airedFromCache(rec, st) }}
	if m.EndMs > 0 {
		p.Until = time.UnixMilli(m.EndMs).Add(delay) // the rule's end time; else it plays out
	}
	err := r.PlayLocal(p)
	if err != nil {
		r.log.Warn("programme not played from cache", "session", m.Session, "occurrence", m.Occurrence, "err", err)
		return
	}
	r.log.Info("programme from cache", "session", m.Session, "occurrence", m.Occurrence, "from_frame", from)
}

// airedFromCache records a copy that has stopped and reports it: the
// event waits in the outbox for the broker (through a controller outage).
func (r *Receiver) airedFromCache(rec AiredFromCache, st SessionStats) {
	rec.Stats = st
	r.progs.mu.Lock()
	r.progs.log = append(r.progs.log, rec)
	r.progs.mu.Unlock()
	if r.killed.Load() || st.Played == 0 {
		return
	}
	ss := protocol.StreamStats{Played: st.Played, Decoded: st.Decoded, Concealed: st.Concealed, Silence: st.Silence}
	r.send(protocol.KindEvent, protocol.Event{Type: protocol.EventFromCache, TS: time.Now().UnixMilli(), Session: rec.Session,
		Msg: rec.Occurrence, Stream: &ss})
}
