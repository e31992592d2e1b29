package station

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Sessions implements loa.SessionService: it resolves targets from the
// store, persists the session before acting, and hands the stream to the
// audio engine. The engine's outcomes come back through HandleOutcome.
type Sessions struct {
	db        *store.DB
	engine    Streamer
	listeners Listeners // nil: no SDP
	logger    *slog.Logger

	mu        sync.Mutex
	content   map[string]io.Closer                      // of running sessions, closed when they end
	firstSent map[string]time.Time                      // when each session's first packet left
	listening map[string]map[netip.AddrPort]*time.Timer // per session: its SDP listeners, each ended by its timer

	absent    map[string][]string  // per running session: the receivers offline when it started, never tuned
	audiences map[string]*audience // per session, running or settling: its receivers' evidence
	airedQ    []loa.PlayLogEntry   // aired lines not yet written
	flushing  bool                 // a flushAired runs

	fromCache map[string]bool // session/device of every aired-from-cache line written (offline.go)

	deliveries       map[string]*delivery // per session, running or settling: its delivery report
	flushingDelivery bool                 // a flushDeliveries runs
	lateQ            []lateFinish         // finished events of settled reports, to add to their stored lines
	onLine           func(lineChange)     // the watcher of every line's changes (nil: none)
	lineQ            []lineChange         // changes not yet told to it
	tellMu           sync.Mutex           // held by the one goroutine telling onLine

	// Alarms raises no_audience for a session heard by no receiver, and
	// clears it when one is heard (nil: no alarm).
	Alarms StationAlarms
	// AudienceSettle is how long receivers have to report after a session
	// ended before it is judged heard by nobody; zero: 3 s.
	AudienceSettle time.Duration

	// Listener caps; zero: loa.MaxSessionListeners, loa.MaxStationListeners.
	MaxListeners, MaxStationListeners int

	// Online reports a receiver's presence (nil: every receiver is). A late
	// start and a resume wait for their receivers, and the play log never
	// lists a receiver offline at the start (never tuned) as playing.
	Online func(id string) bool
	// Presence tells a receiver's presence: loa.PresenceOnline, Offline or
	// Unknown (nil: Online decides, and a receiver not online is offline).
	// A receiver whose presence is unknown at a start (the controller's
	// broker link is down or its statuses are still coming back) is not
	// missed: its tune waits out the outage and it joins the programme
	// when it is back; only receivers known offline get a missed line.
	Presence func(id string) string
	// Lead is the pre-roll: a start missed by no more than it (the
	// controller was down) plays from its beginning, as nothing aired.
	Lead time.Duration
	// ReceiverWait bounds a late start's or a resume's wait for its
	// receivers; zero: Lead + 5 s.
	ReceiverWait time.Duration
	// Restarted is told of each session of a caller's source (StartWith)
	// that ResumeInterrupted stopped "controller restarted": a relay can
	// start its source again (Relays.Restart); a live microphone cannot.
	Restarted func(ctx context.Context, stopped *loa.Session)
}

// NewSessions returns the session service of db streaming through engine;
// listeners (may be nil) serves SDP.
func NewSessions(db *store.DB, engine Streamer, listeners Listeners, logger *slog.Logger) *Sessions {
	return &Sessions{db: db, engine: engine, listeners: listeners, logger: logger}
}

// HandleOutcome records what the engine tells of a session: when its first
// packet left, which receivers it lost (in the play log), how it ended.
func (s *Sessions) HandleOutcome(o loa.SessionOutcome) {
	switch o.Kind {
	case loa.OutcomeStreaming:
		s.streamed(o.Session, o.At)
	case loa.OutcomePreempted:
		s.preempted(o.Session, o.Devices, o.By)
	case loa.OutcomeEnded:
		s.ended(o.Session, o.State, o.Reason)
	}
}

func (s *Sessions) streamed(id string, first time.Time) {
	s.mu.Lock()
	if s.firstSent == nil {
		s.firstSent = make(map[string]time.Time)
	}
	s.firstSent[id] = first
	s.mu.Unlock()
	// Kept with the session: a restart then knows whether it had aired.
	if err := s.db.MarkSessionSent(context.Background(), id, first); err != nil {
		s.logger.Warn("first packet not recorded", "session", id, "err", err)
	}
}

// FirstSent reports when a session's first packet left the controller.
func (s *Sessions) FirstSent(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.firstSent[id]
	return t, ok
}

var _ loa.SessionService = (*Sessions)(nil)

func (s *Sessions) StartSession(ctx context.Context, sess *loa.Session) error {
	return s.start(ctx, sess, false)
}

// start starts a session; a looping one repeats its content until stopped
// (or its max duration), for background programmes.
func (s *Sessions) start(ctx context.Context, sess *loa.Session, looping bool) error {
	if err := sess.Validate(); err != nil {
		return err
	}
	if sess.Origin.Kind == "" {
		sess.Origin.Kind = loa.OriginManual
	}
	devs, err := s.Resolve(ctx, sess.Targets)
	if err != nil {
		return err
	}
	src, frames, err := s.open(ctx, sess)
	if err != nil {
		return err
	}
	if looping {
		src = &loop{open: func() (source, int, error) { return s.open(context.Background(), sess) }, cur: src}
		frames = 0
	}
	if sess.T0Ms > 0 { // a programme announced to receivers' caches (offline.go): its id and timeline are set
		if frames, err = alignToTimeline(sess, src, frames, time.Now()); err != nil {
			src.Close()
			return err
		}
	} else {
		sess.ID = newID()
	}
	length := time.Duration(frames) * protocol.FrameDuration

	sess.SSRC = randomSSRC()
	sess.Devices = devs
	sess.State = loa.SessionPlaying
	sess.StartedAt = time.Now()
	if sess.ScheduledAt.After(sess.StartedAt) {
		sess.StartedAt = sess.ScheduledAt // started early so receivers can tune; streams on time
	}
	if sess.MaxDuration == 0 {
		sess.MaxDuration = length + 30*time.Second
	}
	if err := s.launch(ctx, sess, src, frames); err != nil {
		return err
	}
	s.logger.Info("session started", "session", sess.ID, "media", sess.MediaID, "playlist", sess.PlaylistID,
		"devices", len(devs), "priority", sess.Priority, "length", length)
	return nil
}

// StartWith starts sess streaming src, content its caller produces (a live
// microphone, a relay): sess names no media nor playlist. frames is its
// length in packets, 0 when unknown: it then runs until src ends (io.EOF),
// is stopped or its maximum duration passes (0: DefaultStreamMaxDuration).
// src may return loa.ErrGap for a frame it has no packet for; if it is an
// io.Closer it is closed when the session ends. As StartSession, it
// resolves the targets, writes the session before acting and fills ID,
// SSRC, Devices, State and StartedAt; the origin defaults to manual.
func (s *Sessions) StartWith(ctx context.Context, sess *loa.Session, src loa.PacketSource, frames int) error {
	if src == nil {
		return loa.Errorf(loa.EINVALID, "session: no source")
	}
	if sess.MediaID != "" || sess.PlaylistID != "" {
		return loa.Errorf(loa.EINVALID, "media_id, playlist_id: a session with its own source names neither")
	}
	if err := sess.ValidateStream(); err != nil {
		return err
	}
	if sess.Origin.Kind == "" {
		sess.Origin.Kind = loa.OriginManual
	}
	devs, err := s.Resolve(ctx, sess.Targets)
	if err != nil {
		return err
	}
	if sess.MaxDuration == 0 {
		sess.MaxDuration = loa.DefaultStreamMaxDuration
		if frames > 0 {
			sess.MaxDuration = time.Duration(frames)*protocol.FrameDuration + 30*time.Second
		}
	}
	sess.ID, sess.SSRC, sess.Devices = newID(), randomSSRC(), devs
	if err := s.startSource(ctx, sess, closingSource{src}, frames); err != nil {
		return err
	}
	s.logger.Info("session started", "session", sess.ID, "origin", sess.Origin.String(), "devices", len(devs),
		"priority", sess.Priority, "transcoded", sess.Transcoded)
	return nil
}

// closingSource closes its source if it can be closed.
type closingSource struct{ loa.PacketSource }

func (c closingSource) Close() error {
	if cl, ok := c.PacketSource.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// startSource starts sess streaming src, content built by the caller (an
// alert's tone, speech and repeats), which the service closes when the
// session ends. The caller sets ID, SSRC, Devices, Priority, MaxDuration,
// Origin and CreatedBy; the session is written before acting, as every session.
func (s *Sessions) startSource(ctx context.Context, sess *loa.Session, src source, frames int) error {
	sess.State = loa.SessionPlaying
	sess.StartedAt = time.Now()
	return s.launch(ctx, sess, src, frames)
}

// launch writes sess, before acting, so a crash leaves a record of what
// was playing, then streams src, which the service closes when the
// session ends.
func (s *Sessions) launch(ctx context.Context, sess *loa.Session, src source, frames int) error {
	if err := s.db.PutSession(ctx, sess); err != nil {
		src.Close()
		return err
	}
	s.mu.Lock()
	if s.content == nil {
		s.content = make(map[string]io.Closer)
	}
	s.content[sess.ID] = src
	s.mu.Unlock()
	s.follow(sess)
	s.track(ctx, sess, frames, false)
	if err := s.engine.Start(ctx, sess, src, frames); err != nil {
		s.ended(sess.ID, loa.SessionFailed, err.Error())
		return err
	}
	s.logStart(ctx, sess, loa.PlayStarted, approvalNote(ctx, s.db, sess))
	return nil
}

// logStart writes sess's start line (event): what the controller did, for
// the session, naming no receiver (only "aired" says a receiver heard
// it). Receivers offline at the start are marked in the delivery report:
// their tunes wait, and one back before the end joins; the others get
// their missed line when the report settles.
func (s *Sessions) logStart(ctx context.Context, sess *loa.Session, event, detail string) {
	on, off, later := s.presences(sess.Devices)
	if len(off) > 0 {
		s.mu.Lock()
		if s.absent == nil {
			s.absent = make(map[string][]string)
		}
		s.absent[sess.ID] = off
		s.mu.Unlock()
		s.offlineAtStart(sess.ID, off)
	}
	told := fmt.Sprintf("the controller streams to %d receivers; each one's evidence is its aired line", len(on)+len(later))
	if len(later) > 0 {
		told += fmt.Sprintf("; %d of them out of reach for now (the controller's broker link is down or their presence not back yet): "+
			"their tunes wait, and each joins when it is back", len(later))
	}
	if len(off) > 0 {
		told += fmt.Sprintf("; %d offline: tuned if back before the end, else missed", len(off))
	}
	if detail != "" {
		told = detail + "; " + told
	}
	s.appendLog(ctx, logEntry(sess, event, nil, told))
}

// presences sorts devs by what is known of them now: online, known
// offline, and unknown (reachable later: the broker link is down or
// settling).
func (s *Sessions) presences(devs []string) (on, off, later []string) {
	switch {
	case s.Presence != nil:
		for _, id := range devs {
			switch s.Presence(id) {
			case loa.PresenceOnline:
				on = append(on, id)
			case loa.PresenceUnknown:
				later = append(later, id)
			default:
				off = append(off, id)
			}
		}
	case s.Online != nil:
		for _, id := range devs {
			if s.Online(id) {
				on = append(on, id)
			} else {
				off = append(off, id)
			}
		}
	default:
		on = devs
	}
	return on, off, later
}

// waitReceivers waits until every receiver of devs is online, at most
// ReceiverWait, and reports how long it waited.
func (s *Sessions) waitReceivers(ctx context.Context, devs []string) time.Duration {
	if s.Online == nil {
		return 0
	}
	bound := s.ReceiverWait
	if bound <= 0 {
		bound = s.Lead + 5*time.Second
	}
	start := time.Now()
	for time.Since(start) < bound && ctx.Err() == nil && !allOnline(devs, s.Online) {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start)
}

// source is what a session streams: its packets, and what to close after.
type source interface {
	loa.PacketSource
	io.Closer
}

// packetFile is a stored Ogg Opus file read packet by packet.
type packetFile struct {
	*media.PacketReader
	io.Closer
}

// open returns the packets of the session's media item or playlist and
// how many there are. Missing content is ENOTFOUND naming the field.
func (s *Sessions) open(ctx context.Context, sess *loa.Session) (source, int, error) {
	if sess.PlaylistID == "" {
		m, err := s.db.Media(ctx, sess.MediaID)
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return nil, 0, loa.Errorf(loa.ENOTFOUND, "media_id: no media %q", sess.MediaID)
		} else if err != nil {
			return nil, 0, err
		}
		if m.State == loa.MediaDraft {
			return nil, 0, notApproved("media_id", m.ID)
		}
		f, err := s.db.OpenBlob(store.MediaBlob, m.Hash)
		if err != nil {
			return nil, 0, fmt.Errorf("media %s: %w", m.ID, err)
		}
		r, err := media.NewPacketReader(f)
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("media %s: %w", m.ID, err)
		}
		return packetFile{r, f}, m.Frames, nil
	}
	p, err := s.db.Playlist(ctx, sess.PlaylistID)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, 0, loa.Errorf(loa.ENOTFOUND, "playlist_id: no playlist %q", sess.PlaylistID)
	} else if err != nil {
		return nil, 0, err
	}
	items := make([]media.PlaylistItem, len(p.Items))
	frames := make([]int, len(p.Items))
	gaps := make([]time.Duration, len(p.Items))
	for i, it := range p.Items {
		m, err := s.db.Media(ctx, it.MediaID)
		if err != nil {
			return nil, 0, loa.Errorf(loa.ENOTFOUND, "playlist %s: items[%d]: no media %q", p.ID, i, it.MediaID)
		}
		if m.State == loa.MediaDraft {
			return nil, 0, notApproved(fmt.Sprintf("playlist %s: items[%d].media_id", p.ID, i), m.ID)
		}
		hash := m.Hash
		items[i] = media.PlaylistItem{Open: func() (io.ReadCloser, error) { return s.db.OpenBlob(store.MediaBlob, hash) }, Gap: it.Gap}
		frames[i], gaps[i] = m.Frames, it.Gap
	}
	pl, err := media.NewPlaylist(items)
	if err != nil {
		return nil, 0, err
	}
	return pl, media.PlaylistFrames(frames, gaps), nil
}

// Resolve expands target areas (with their descendants) and devices into
// a sorted, de-duplicated list of device ids (loa.Targets.Resolve over the
// stored areas and devices).
func (s *Sessions) Resolve(ctx context.Context, t loa.Targets) ([]string, error) {
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	devices, err := s.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	return t.Resolve(loa.NewAreaTree(areas), devices)
}

// ended records how the session ended.
func (s *Sessions) ended(id, state, reason string) {
	s.mu.Lock()
	if c := s.content[id]; c != nil {
		c.Close()
		delete(s.content, id)
	}
	s.dropListenersLocked(id)
	absent := s.absent[id]
	delete(s.absent, id)
	_, streamed := s.firstSent[id]
	if reason == loa.SessionShutdown {
		delete(s.audiences, id) // it resumes, and is followed again, after the restart
	}
	s.mu.Unlock()
	if reason == loa.SessionShutdown {
		// The controller is stopping, not the programme: it stays
		// "playing" in the store and resumes when the controller is back.
		s.untrack(id)
		s.logger.Info("session interrupted by shutdown", "session", id)
		return
	}
	s.deliveryEnded(id, state)
	ctx := context.Background()
	sess, err := s.db.Session(ctx, id)
	if err != nil {
		s.logger.Error("session ended but cannot be read", "session", id, "err", err)
		s.judge(id, nil, nil, false)
		return
	}
	sess.State, sess.Reason, sess.EndedAt = state, reason, time.Now()
	if err := s.db.PutSession(ctx, sess); err != nil {
		s.logger.Error("session end not recorded", "session", id, "err", err)
		s.judge(id, sess, nil, false)
		return
	}
	event := map[string]string{loa.SessionEnded: loa.PlayEnded, loa.SessionStopped: loa.PlayStopped}[state]
	if event == "" {
		event = loa.PlayFailed
	}
	// The session's line names no receiver: their evidence (aired) and
	// failures (missed, failed) are lines of their own.
	played := slices.DeleteFunc(slices.Clone(sess.Devices), func(d string) bool { return slices.Contains(absent, d) })
	s.appendLog(ctx, logEntry(sess, event, nil, reason))
	s.judge(id, sess, played, streamed)
	s.logger.Info("session ended", "session", id, "state", state, "reason", reason)
}

// playLog writes a session's line in the station's broadcast log.
func (s *Sessions) playLog(ctx context.Context, sess *loa.Session, event, detail string) {
	s.appendLog(ctx, logEntry(sess, event, sess.Devices, detail))
}

// logEntry is sess's play log line for devices.
func logEntry(sess *loa.Session, event string, devices []string, detail string) loa.PlayLogEntry {
	e := loa.PlayLogEntry{Event: event, SessionID: sess.ID, Content: loa.Content{MediaID: sess.MediaID, PlaylistID: sess.PlaylistID, RelayID: sess.RelayID},
		Devices: devices, Areas: sess.Targets.Areas, By: sess.CreatedBy, Detail: detail, RecordingID: sess.RecordingID}
	switch sess.Origin.Kind {
	case loa.OriginSchedule, loa.OriginAlert, loa.OriginFallback:
		e.By = sess.Origin.String() // the log names the schedule, alert or area behind it
	}
	if sess.Origin.Kind == loa.OriginSchedule {
		e.ScheduleID = sess.Origin.ID
	}
	if k := sess.Origin.Kind; k == loa.OriginLive || k == loa.OriginRelay {
		e.Origin = k
	}
	return e
}

func (s *Sessions) appendLog(ctx context.Context, e loa.PlayLogEntry) {
	if err := s.db.AppendPlayLog(ctx, e); err != nil {
		s.logger.Error("play log not written", "session", e.SessionID, "event", e.Event, "err", err)
	}
}

// busy reports whether a playing session holds any device the targets
// resolve to.
func (s *Sessions) busy(ctx context.Context, t loa.Targets) (bool, error) {
	devs, err := s.Resolve(ctx, t)
	if err != nil {
		return false, err
	}
	all, err := s.db.Sessions(ctx)
	if err != nil {
		return false, err
	}
	for _, sess := range all {
		if sess.State != loa.SessionPlaying {
			continue
		}
		for _, d := range sess.Devices {
			if _, found := slices.BinarySearch(devs, d); found {
				return true, nil
			}
		}
	}
	return false, nil
}

// StopSession records who stops the session, then stops it.
func (s *Sessions) StopSession(ctx context.Context, id, by, reason string) error {
	sess, err := s.db.Session(ctx, id)
	if err != nil {
		return err
	}
	if sess.State != loa.SessionPlaying {
		return loa.Errorf(loa.ECONFLICT, "session %s is already %s", id, sess.State)
	}
	if reason == "" {
		reason = "stopped"
	}
	if by != "" {
		sess.StoppedBy = by
		if err := s.db.PutSession(ctx, sess); err != nil {
			return err
		}
	}
	return s.engine.Stop(ctx, id, reason)
}

func (s *Sessions) Session(ctx context.Context, id string) (*loa.Session, error) {
	return s.db.Session(ctx, id)
}

func (s *Sessions) Sessions(ctx context.Context) ([]*loa.Session, error) {
	return s.db.Sessions(ctx)
}

// SessionSDP adds the listener for req.For (again: the time starts over),
// within the caps per session and per station, and answers the SDP.
func (s *Sessions) SessionSDP(ctx context.Context, id string, req loa.ListenerRequest) (string, error) {
	dest := req.Dest
	sess, err := s.db.Session(ctx, id)
	if err != nil {
		return "", err
	}
	if sess.State != loa.SessionPlaying {
		return "", loa.Errorf(loa.ECONFLICT, "session %s is %s, not playing", id, sess.State)
	}
	if s.listeners == nil {
		return "", loa.Errorf(loa.EUNAVAILABLE, "session %s: SDP is not available", id)
	}
	ttl := req.For
	if ttl <= 0 {
		ttl = loa.DefaultListenerTime
	}
	if ttl > loa.MaxListenerTime {
		return "", loa.Errorf(loa.EINVALID, "for: at most %v", loa.MaxListenerTime)
	}
	// Each listener gets a key of its own (SDES, RFC 4568), drawn here and
	// given only in this answer; asking again draws a new one.
	var sdes []byte
	if !req.Plain {
		sdes = make([]byte, protocol.SDESKeyLen+protocol.SDESSaltLen)
		rand.Read(sdes)
	}
	if err := s.listen(id, dest, ttl, sdes); err != nil {
		return "", err
	}
	src := s.listeners.LocalAddr().Addr()
	if ap, err := netip.ParseAddrPort(s.listeners.PublicAddr()); err == nil {
		src = ap.Addr()
	}
	sdp := protocol.SDP(id, sess.SSRC, src, dest, sdes)
	if mc, ok := s.listeners.(MediaClocks); ok {
		if c, ok := mc.MediaClock(id); ok {
			sdp += c.SDPLines()
		}
	}
	return sdp, nil
}

// listen adds dest to session id's listeners, or renews it (with the new
// key), and arms its end. The place is taken under the lock (so the caps hold under
// concurrent calls) and given back if the engine refuses the listener;
// the engine is called without the lock, as it calls back into s.
func (s *Sessions) listen(id string, dest netip.AddrPort, ttl time.Duration, sdes []byte) error {
	s.mu.Lock()
	if s.listening == nil {
		s.listening = map[string]map[netip.AddrPort]*time.Timer{}
	}
	mine := s.listening[id]
	if t := mine[dest]; t != nil {
		t.Reset(ttl)
		s.mu.Unlock()
		return s.listeners.AddListener(id, dest, sdes) // the new key replaces the old
	}
	perSession, total := cmp.Or(s.MaxListeners, loa.MaxSessionListeners), cmp.Or(s.MaxStationListeners, loa.MaxStationListeners)
	if len(mine) >= perSession {
		s.mu.Unlock()
		return loa.Errorf(loa.ECONFLICT, "session %s has %d listeners, as many as a session takes; remove one first (DELETE /api/v1/sessions/%s/listeners/{dest})", id, len(mine), id)
	}
	n := 0
	for _, l := range s.listening {
		n += len(l)
	}
	if n >= total {
		s.mu.Unlock()
		return loa.Errorf(loa.ECONFLICT, "the station has %d listeners, as many as it takes; try again later", n)
	}
	if mine == nil {
		mine = map[netip.AddrPort]*time.Timer{}
		s.listening[id] = mine
	}
	mine[dest] = time.AfterFunc(ttl, func() {
		if err := s.RemoveListener(context.Background(), id, dest); err != nil && loa.ErrorCode(err) != loa.ENOTFOUND {
			s.logger.Warn("listener not ended", "session", id, "addr", dest.String(), "err", err)
		}
	})
	s.mu.Unlock()
	if err := s.listeners.AddListener(id, dest, sdes); err != nil {
		s.mu.Lock()
		if t := s.listening[id][dest]; t != nil {
			t.Stop()
			delete(s.listening[id], dest)
			if len(s.listening[id]) == 0 {
				delete(s.listening, id)
			}
		}
		s.mu.Unlock()
		return err
	}
	return nil
}

// RemoveListener stops the stream to dest; ENOTFOUND if the session has
// no such listener.
func (s *Sessions) RemoveListener(ctx context.Context, id string, dest netip.AddrPort) error {
	s.mu.Lock()
	t := s.listening[id][dest]
	if t == nil {
		s.mu.Unlock()
		return loa.Errorf(loa.ENOTFOUND, "session %s has no listener %s", id, dest)
	}
	t.Stop()
	delete(s.listening[id], dest)
	if len(s.listening[id]) == 0 {
		delete(s.listening, id)
	}
	s.mu.Unlock()
	err := s.listeners.RemoveListener(id, dest)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil // the session ended meanwhile: the stream has stopped anyway
	}
	return err
}

// dropListenersLocked forgets an ended session's listeners; s.mu must be held.
func (s *Sessions) dropListenersLocked(id string) {
	for _, t := range s.listening[id] {
		t.Stop()
	}
	delete(s.listening, id)
}

// ResumeInterrupted picks up the sessions that were playing when the
// controller stopped (shut down or killed): each resumes at the position
// the wall clock says it should be at, so nothing is played twice, once its
// receivers are back online (at most wait) or, joined mid-way, of unknown
// presence (the broker link is new: their tunes wait, and each joins as
// soon as it is back, so one slow receiver does not hold the others'
// audio after a failover). One that had not aired yet
// (launched in its pre-roll) and is late by no more than Lead plays from
// its beginning. Sessions whose programme ended meanwhile are recorded as
// ended.
func (s *Sessions) ResumeInterrupted(ctx context.Context, online func(id string) bool, wait time.Duration) {
	restarted := time.Now()
	all, err := s.db.Sessions(ctx)
	if err != nil {
		s.logger.Error("cannot list interrupted sessions", "err", err)
		return
	}
	var pending []*loa.Session
	for _, sess := range all {
		if sess.State != loa.SessionPlaying {
			continue
		}
		if sess.Origin.Kind == loa.OriginFallback || (sess.MediaID == "" && sess.PlaylistID == "") {
			// Its supervisor starts it afresh; a loop has no position. A
			// session of its caller's source (StartWith: a live microphone,
			// a relay) lost it with the controller.
			sess.State, sess.Reason, sess.EndedAt = loa.SessionStopped, "controller restarted", time.Now()
			if err := s.db.PutSession(ctx, sess); err != nil {
				s.logger.Error("session not closed", "session", sess.ID, "err", err)
			} else if sess.Origin.Kind != loa.OriginFallback {
				s.appendLog(ctx, logEntry(sess, loa.PlayStopped, nil, sess.Reason))
			}
			s.closeDelivery(ctx, sess)
			if s.Restarted != nil && sess.Origin.Kind != loa.OriginFallback {
				s.Restarted(ctx, sess)
			}
			continue
		}
		pending = append(pending, sess)
	}
	if len(pending) == 0 {
		return
	}
	deadline := time.Now().Add(wait)
	// Each session waits for its own receivers, beside the others: one
	// whose receivers are slow to come back (idle ones notice a frozen
	// leader only by keep-alive) must not hold up the rest.
	var wg sync.WaitGroup
	for _, sess := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.resumeWhenReady(ctx, sess, restarted, deadline, online)
		}()
	}
	wg.Wait()
}

// resumeWhenReady resumes one interrupted session once its receivers are
// ready (or at deadline).
func (s *Sessions) resumeWhenReady(ctx context.Context, sess *loa.Session, restarted, deadline time.Time, online func(string) bool) {
	fromStart := sess.FirstSentAt.IsZero() && restarted.Sub(sess.StartedAt) <= s.Lead
	// One played from its beginning waits for its receivers to be
	// online, as a start does; one joined mid-way waits only for
	// those known offline, so each comes back to it on its own.
	ready := func() bool { return s.allReachable(sess.Devices, online) }
	if fromStart {
		ready = func() bool { return allOnline(sess.Devices, online) }
	}
	for time.Now().Before(deadline) && ctx.Err() == nil && !ready() {
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	if err := s.resume(ctx, sess, fromStart); err != nil {
		s.logger.Error("session not resumed", "session", sess.ID, "err", err)
		sess.State, sess.Reason, sess.EndedAt = loa.SessionFailed, "not resumed after restart: "+err.Error(), time.Now()
		if err := s.db.PutSession(ctx, sess); err == nil {
			s.playLog(ctx, sess, loa.PlayFailed, sess.Reason)
		}
		s.closeDelivery(ctx, sess)
	}
}

// allReachable: every device is online, or (with Presence) of unknown
// presence, whose tune waits until it is back.
func (s *Sessions) allReachable(ids []string, online func(string) bool) bool {
	if s.Presence == nil {
		return allOnline(ids, online)
	}
	for _, id := range ids {
		if p := s.Presence(id); p != loa.PresenceOnline && p != loa.PresenceUnknown {
			return false
		}
	}
	return true
}

func allOnline(ids []string, online func(string) bool) bool {
	for _, id := range ids {
		if !online(id) {
			return false
		}
	}
	return true
}

// resume restarts one interrupted session at its wall-clock position, or
// from its beginning (fromStart: nothing of it had aired).
func (s *Sessions) resume(ctx context.Context, sess *loa.Session, fromStart bool) error {
	src, frames, err := s.open(ctx, sess)
	if err != nil {
		return err
	}
	now := time.Now()
	if sess.T0Ms > 0 {
		// On a timeline announced to receivers' caches (offline.go): it
		// rejoins it at the wall clock's frame, never from its start.
		fromStart, sess.StartedAt = false, time.UnixMilli(sess.T0Ms)
	}
	if fromStart && sess.StartedAt.Before(now) {
		sess.StartedAt = now // packet 0 is due now: the pre-roll was lost, not the programme
	}
	elapsed := now.Sub(sess.StartedAt)
	if ahead := -elapsed; ahead > s.Lead+2*time.Second {
		// Further ahead than any pre-roll: the wall clock stepped back since
		// it started. How far it got is unknown, so it resumes from its
		// start now rather than fail on a negative seek or wait for hours.
		s.logger.Warn("session started after the wall clock's now: the clock stepped back; resuming from its start",
			"session", sess.ID, "started_at", sess.StartedAt, "ahead", ahead)
		sess.StartedAt = now
		if sess.ScheduledAt.After(now) {
			sess.ScheduledAt = now
		}
	}
	elapsed = max(elapsed, 0) // before its time (pre-roll): the engine holds packet 0 until ScheduledAt
	skip := int(elapsed / protocol.FrameDuration)
	if skip >= frames || (sess.MaxDuration > 0 && elapsed >= sess.MaxDuration) {
		src.Close()
		sess.State, sess.Reason, sess.EndedAt = loa.SessionEnded, "ended while the controller was down", sess.StartedAt.Add(time.Duration(frames)*protocol.FrameDuration)
		event := loa.PlayEnded
		if sess.FirstSentAt.IsZero() {
			// Nothing of it aired: not "ended" for receivers that never heard it.
			sess.State, sess.Reason, event = loa.SessionFailed, "not aired: its time passed while the controller was down", loa.PlayMissed
		}
		if err := s.db.PutSession(ctx, sess); err != nil {
			return err
		}
		devs := sess.Devices
		if event == loa.PlayEnded {
			devs = nil // the session's line; its receivers' evidence is in their aired lines
		}
		s.appendLog(ctx, logEntry(sess, event, devs, sess.Reason))
		s.closeDelivery(ctx, sess)
		return nil
	}
	if _, err := src.(interface{ Skip(int) (int, error) }).Skip(skip); err != nil {
		src.Close()
		return fmt.Errorf("seek to %v: %w", elapsed, err)
	}
	sess.SSRC = randomSSRC()
	if err := s.db.PutSession(ctx, sess); err != nil {
		src.Close()
		return err
	}
	run := *sess // the engine counts the max duration from now
	if run.MaxDuration > 0 {
		run.MaxDuration -= elapsed
	}
	if sess.T0Ms > 0 {
		run.ScheduledAt = sess.StartedAt.Add(time.Duration(skip) * protocol.FrameDuration) // its first packet's frame
	}
	s.mu.Lock()
	if s.content == nil {
		s.content = make(map[string]io.Closer)
	}
	s.content[sess.ID] = src
	s.mu.Unlock()
	s.follow(sess)
	s.track(ctx, sess, frames-skip, skip > 0 || !sess.FirstSentAt.IsZero())
	if err := s.engine.Start(ctx, &run, src, frames-skip); err != nil {
		s.mu.Lock()
		delete(s.content, sess.ID)
		delete(s.audiences, sess.ID)
		s.mu.Unlock()
		s.untrack(sess.ID)
		src.Close()
		return err
	}
	detail := fmt.Sprintf("at %v of %v", (time.Duration(skip) * protocol.FrameDuration).Round(time.Millisecond), time.Duration(frames)*protocol.FrameDuration)
	if fromStart {
		detail = "from its beginning: nothing of it had aired before the restart"
	}
	s.logStart(ctx, sess, loa.PlayResumed, detail)
	s.logger.Info("session resumed", "session", sess.ID, "position", time.Duration(skip)*protocol.FrameDuration, "devices", len(sess.Devices))
	return nil
}

// preempted records in the play log which receivers a session lost, and
// to what.
func (s *Sessions) preempted(id string, devices []string, by string) {
	ctx := context.Background()
	sess, err := s.db.Session(ctx, id)
	if err != nil {
		s.logger.Warn("preempted session not found", "session", id, "err", err)
		return
	}
	s.mu.Lock()
	if a := s.audiences[id]; a != nil {
		for _, d := range devices {
			a.lost[d] = true
		}
	}
	s.mu.Unlock()
	s.deliveryPreempted(id, devices, by)
	s.appendLog(ctx, logEntry(sess, loa.PlayPreempted, devices, "by session "+by))
}
