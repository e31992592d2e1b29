package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Alerts implements loa.AlertService. An alert is one session (its
// tone, content and repeats with their gaps as one playlist stream) to the
// targets online when it is sent, plus a late session for each batch of
// targets that come back online before it expires: those offline at the
// send, those that lost their play (a reboot, an outage of their own),
// and, after a controller restart, every one that had not played it
// through (Recover). Its report is a view
// of its sessions' delivery lines (lineChanged): acked, started, refused,
// no_ack and the frames played come from them; the alert adds what is its
// own: receivers out of reach waiting for a late session, repeats,
// finished once the whole played, and its clock (no_stream, settling
// after a session ends, expiry, cancel). The report is written to the
// store when the alert is created, at most every persist while it
// changes, and when it ends.
type Alerts struct {
	db       *store.DB
	sessions *Sessions
	fleet    Fleet
	speech   media.Synthesizer // nil: text alerts are EUNAVAILABLE
	delay    time.Duration     // the receivers' playout delay
	logger   *slog.Logger

	// Zero takes the default.
	noStream time.Duration // acked, stream running, nothing played this long: failed no_stream
	settle   time.Duration // after its session ended, how long a receiver has to report finished
	persist  time.Duration // shortest interval between report writes of one alert
	tick     time.Duration // the clock's resolution
	lateWait time.Duration // devices back online within this are sent one late session

	tone func() (alertItem, error) // the attention tone, encoded once

	stored *Stored // stored messages: receivers holding one play it from storage; nil: always streamed
	sms    *SMS    // sends the SMS triggers of alerts naming a stored message; nil: none

	// OnEnd, set before Run, is told of every alert as it ends (its report
	// settled), under the service's lock: it must not block nor keep a.
	OnEnd func(a *loa.Alert)

	mu        sync.Mutex
	live      map[string]*liveAlert // active alerts by id
	bySession map[string]*liveAlert // their sessions, running or settling
	kick      chan struct{}
}

// Defaults of the alert clock.
const (
	alertNoStream = 3 * time.Second
	alertSettle   = 3 * time.Second
	// alertSettleMax bounds the wait for reports after a session ended.
	alertSettleMax = 30 * time.Second
	alertPersist   = 500 * time.Millisecond
	alertTick      = 100 * time.Millisecond
	alertLateWait  = 250 * time.Millisecond
	// alertMargin is added to an alert's length for its max duration.
	alertMargin = 30 * time.Second
	// alertResends bounds how often one receiver is sent an alert again
	// after a play it lost (rebooted, or offline before finishing), so a
	// receiver that reboots in a loop does not replay it for ever.
	alertResends = 3
)

var _ loa.AlertService = (*Alerts)(nil)

// NewAlerts returns the alert service of db: it sends alerts through
// sessions, follows the receivers of fleet, speaks text with speech (nil:
// text alerts are EUNAVAILABLE), and allows for the receivers' playout
// delay. Run starts its clock.
func NewAlerts(db *store.DB, sessions *Sessions, fleet Fleet, speech media.Synthesizer, delay time.Duration, logger *slog.Logger) *Alerts {
	s := &Alerts{
		db: db, sessions: sessions, fleet: fleet, speech: speech, delay: delay, logger: logger,
		noStream: alertNoStream, settle: alertSettle, persist: alertPersist, tick: alertTick, lateWait: alertLateWait,
		live: map[string]*liveAlert{}, bySession: map[string]*liveAlert{}, kick: make(chan struct{}, 1),
	}
	sessions.watchLines(s.lineChanged)
	s.tone = sync.OnceValues(func() (alertItem, error) {
		return encodeItem(context.Background(), media.AttentionTone(protocol.ClockRate), protocol.ClockRate)
	})
	return s
}

// liveAlert is an active alert and what its report is built from; guarded
// by Alerts.mu.
type liveAlert struct {
	a        *loa.Alert
	idx      map[string]int // device → its line in a.Report
	dev      map[string]*track
	content  *alertContent
	runs     map[string]*alertRun // its sessions
	changed  chan struct{}        // closed and replaced on every change
	dirty    bool
	savedAt  time.Time
	lateDue  time.Time // when the devices back online get their late session
	expired  bool      // its expiry ended it
	final    bool      // ended and settled; leaves live once written
	presence time.Time // last check of pending devices against presence
	// storedMsg is the stored message of an alert with a stored_code
	// (nil: none, or recovered after a restart): receivers back online
	// that hold it play it from storage too.
	storedMsg *loa.StoredMessage
	// smsSession is the session SMS triggers name for receivers no
	// session carries it to (sms.go); "" until one is sent.
	smsSession string
}

// alertRun is one session carrying an alert.
type alertRun struct {
	id      string
	late    bool
	stored  *storedRun // receivers playing it from their own storage (play_stored); no stream
	endedAt time.Time  // zero while it runs
	state   string     // how it ended
	heard   time.Time  // the last played or finished event of its receivers
}

// track is one receiver's part in an alert, beyond its report line.
type track struct {
	session   string    // the session carrying it; "" while pending
	pending   bool      // offline: waits to come back before expiry
	back      bool      // came back online: goes in the next late session
	blockedBy string    // a running session of this alert still holding it: the late session waits for its end
	played    uint64    // frames played, over every part of its session
	preempted bool      // a higher session holds it now
	ackedAt   time.Time // controller clock of its last ack
	boot      uint64    // the receiver's boot when its session took it (0: unknown)
	offline   bool      // went offline (its own status or Will) during its session, before finishing
	resends   int       // times it was sent the alert again after a lost play
	noStored  bool      // refused play_stored: later parts come by the stream
}

// revisable reports whether a failure the clock decided may still be
// corrected by a late report from the receiver: on a congested broker a
// played or finished event can arrive after the wait for it ran out.
func revisable(d *loa.Delivery) bool {
	switch d.Reason {
	case loa.ReasonNoAck, loa.ReasonNoStream, loa.ReasonPartial:
		return true
	}
	return false
}

func finalDelivery(d *loa.Delivery) bool {
	return d.State == loa.DeliveryFinished || d.State == loa.DeliveryFailed
}

// changedLocked records a change: watchers wake, the report is written.
func (l *liveAlert) changedLocked() {
	l.dirty = true
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *liveAlert) snapshot() *loa.Alert { return cloneAlert(l.a) }

// cloneAlert copies a and its report; the rest is not changed in place.
func cloneAlert(a *loa.Alert) *loa.Alert {
	cp := *a
	cp.Report = slices.Clone(a.Report)
	return &cp
}

// fail settles d as failed with reason.
func (l *liveAlert) fail(d *loa.Delivery, reason string, at time.Time) {
	d.State, d.Reason, d.EndedAt = loa.DeliveryFailed, reason, at
}

// Run follows the fleet's events and presence and runs the alert clock;
// it returns when ctx ends. Its one subscription to the receivers' events
// feeds every session's evidence (the play log's aired lines, the
// delivery reports, and through them the alerts' reports).
func (s *Alerts) Run(ctx context.Context) {
	defer s.fleet.OnEvent(s.sessions.HandleEvent)()
	defer s.fleet.OnEvent(s.storedEvent)()
	defer s.fleet.OnEvent(s.smsEvent)() // plays an SMS trigger started (sms.go)
	defer s.fleet.OnPresence(s.presenceChanged)()
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		s.step(ctx, time.Now())
	}
}

func (s *Alerts) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// SendAlert validates a, resolves its targets, builds its content, stores
// it and starts it.
func (s *Alerts) SendAlert(ctx context.Context, a *loa.Alert) error {
	now := time.Now()
	if err := a.Validate(now); err != nil {
		return err
	}
	msg, err := s.storedContent(ctx, a)
	if err != nil {
		return err
	}
	devs, areaOf, err := s.resolve(ctx, a)
	if err != nil {
		return err
	}
	content, err := s.content(ctx, a)
	if err != nil {
		return err
	}
	a.ID = newID()
	a.State, a.CreatedAt, a.EndedAt, a.Reason = loa.AlertActive, now.UTC(), time.Time{}, ""
	a.Report = make([]loa.Delivery, len(devs))
	l := &liveAlert{idx: make(map[string]int, len(devs)), dev: make(map[string]*track, len(devs)),
		content: content, runs: map[string]*alertRun{}, changed: make(chan struct{}), savedAt: now, presence: now, storedMsg: msg}
	var online []string
	for i, id := range devs {
		d := loa.Delivery{Device: id, Area: areaOf[id], State: loa.DeliveryQueued, QueuedAt: now.UTC()}
		tr := &track{}
		if st, ok := s.fleet.DeviceState(id); ok && st.Online {
			online = append(online, id)
		} else {
			// Offline (or never seen): it gets the alert when it comes back.
			d.Reason, tr.pending = loa.ReasonOffline, true
		}
		a.Report[i] = d
		l.idx[id], l.dev[id] = i, tr
	}
	var fromStore []string
	online, fromStore = s.splitStored(a, msg, online)
	var sess *loa.Session
	if len(online) > 0 {
		sess = s.newSession(a, content, online)
		a.SessionID = sess.ID
	}
	var stored *alertRun
	if len(fromStore) > 0 {
		stored = s.newStoredRun(a, msg)
		if a.SessionID == "" {
			a.SessionID = stored.id
		}
	}
	// Written before acting: a crash leaves a record of what was sent.
	if err := s.db.CreateAlert(ctx, a); err != nil {
		return err
	}
	l.a = cloneAlert(a)
	s.mu.Lock()
	s.live[a.ID] = l
	if sess != nil {
		s.attachLocked(l, sess, online, false)
	}
	if stored != nil {
		s.attachStoredLocked(l, stored, fromStore)
	}
	s.mu.Unlock()
	if sess != nil {
		if err := s.startSession(ctx, l, sess); err != nil {
			s.logger.Error("alert session not started", "alert", a.ID, "err", err)
		}
	}
	if stored != nil {
		s.playStored(l, stored, fromStore)
	}
	s.logger.Info("alert sent", "alert", a.ID, "level", a.Level, "devices", len(devs), "online", len(online),
		"repeats", a.Repeats, "length", time.Duration(content.frames)*protocol.FrameDuration, "by", a.CreatedBy)
	if s.sms != nil && a.StoredCode != 0 {
		s.sms.alertSent(a.ID)
	}
	s.poke()
	return nil
}

// newSession is the session that carries a to devices.
func (s *Alerts) newSession(a *loa.Alert, c *alertContent, devices []string) *loa.Session {
	sess := &loa.Session{ID: newID(), MediaID: a.Content.MediaID, Targets: loa.Targets{Devices: devices},
		Priority: a.Priority(), SSRC: randomSSRC(), Devices: devices, Origin: loa.Origin{Kind: loa.OriginAlert, ID: a.ID}, CreatedBy: a.CreatedBy,
		MaxDuration: time.Duration(c.frames)*protocol.FrameDuration + alertMargin}
	if a.Priority().Emergency() {
		sess.Volume = a.Volume
	}
	return sess
}

// attachLocked makes sess carry devices of l; s.mu must be held.
func (s *Alerts) attachLocked(l *liveAlert, sess *loa.Session, devices []string, late bool) {
	l.runs[sess.ID] = &alertRun{id: sess.ID, late: late}
	s.bySession[sess.ID] = l
	for _, id := range devices {
		tr := l.dev[id]
		tr.session, tr.pending, tr.back, tr.blockedBy, tr.played, tr.preempted = sess.ID, false, false, "", 0, false
		tr.offline, tr.boot = false, 0
		if st, ok := s.fleet.DeviceState(id); ok {
			tr.boot = st.Boot // a later boot means the receiver lost this play
		}
	}
}

// startSession opens the content and starts sess; if it cannot start,
// its receivers fail.
func (s *Alerts) startSession(ctx context.Context, l *liveAlert, sess *loa.Session) error {
	src, err := l.content.open()
	if err == nil {
		err = s.sessions.startSource(ctx, sess, src, l.content.frames)
	}
	if err != nil {
		s.mu.Lock()
		now := time.Now()
		if r := l.runs[sess.ID]; r != nil && r.endedAt.IsZero() {
			r.endedAt, r.state = now, loa.SessionFailed
		}
		for _, id := range sess.Devices {
			if d := &l.a.Report[l.idx[id]]; !finalDelivery(d) && l.dev[id].session == sess.ID {
				l.fail(d, loa.ReasonFailed, now.UTC())
			}
		}
		l.changedLocked()
		s.mu.Unlock()
		s.poke()
		return err
	}
	return nil
}

// resolve expands a's targets to devices, each with its area. A test
// alert keeps only the devices in areas marked for tests. Targets that
// resolve to no device are EINVALID: an alert must reach someone.
func (s *Alerts) resolve(ctx context.Context, a *loa.Alert) ([]string, map[string]string, error) {
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, nil, err
	}
	all, err := s.db.Devices(ctx)
	if err != nil {
		return nil, nil, err
	}
	tree := loa.NewAreaTree(areas)
	devs, err := a.Targets.Resolve(tree, all)
	if err != nil {
		return nil, nil, err
	}
	areaOf := make(map[string]string, len(all))
	for _, d := range all {
		areaOf[d.ID] = d.AreaID
	}
	if a.Test {
		devs = slices.DeleteFunc(devs, func(id string) bool { return !testArea(tree, areaOf[id]) })
		if len(devs) == 0 {
			return nil, nil, loa.Errorf(loa.EINVALID, "targets: a test alert sounds only in areas marked for tests, and none of its targets is in one")
		}
	}
	if len(devs) == 0 {
		return nil, nil, loa.Errorf(loa.EINVALID, "targets: no receiver in the areas and devices named; the alert would reach nobody")
	}
	return devs, areaOf, nil
}

// testArea reports whether area id or an ancestor is marked for tests.
func testArea(tree loa.AreaTree, id string) bool {
	for depth := 0; id != "" && depth < 16; depth++ {
		a := tree[id]
		if a == nil {
			return false
		}
		if a.Tests {
			return true
		}
		id = a.ParentID
	}
	return false
}

// alertItem is one encoded recording of an alert's content.
type alertItem struct {
	open   func() (io.ReadCloser, error)
	frames int
}

// alertContent is what an alert plays: each repeat is the tone (if any)
// and the content, with the gap between repeats, as one playlist.
type alertContent struct {
	items  []media.PlaylistItem
	frames int // of the whole stream
	repeat int // frames of one repeat, tone included
	gap    int // frames of silence between repeats
}

func (c *alertContent) open() (source, error) {
	return media.NewPlaylist(c.items)
}

// content builds a's stream once: the stored media item, or its text
// spoken by the speech engine and encoded in memory.
func (s *Alerts) content(ctx context.Context, a *loa.Alert) (*alertContent, error) {
	var body alertItem
	if a.Content.MediaID != "" {
		m, err := s.db.Media(ctx, a.Content.MediaID)
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return nil, loa.Errorf(loa.ENOTFOUND, "content.media_id: no media %q", a.Content.MediaID)
		} else if err != nil {
			return nil, err
		}
		if m.State == loa.MediaDraft {
			return nil, notApproved("content.media_id", m.ID)
		}
		hash := m.Hash
		body = alertItem{open: func() (io.ReadCloser, error) { return s.db.OpenBlob(store.MediaBlob, hash) }, frames: m.Frames}
	} else {
		if s.speech == nil {
			return nil, loa.Errorf(loa.EUNAVAILABLE, "content.text: no speech engine is configured; send a media item")
		}
		pcm, rate, err := s.speech.Synthesize(ctx, a.Content.Text)
		if err != nil {
			return nil, fmt.Errorf("content.text: %w", err)
		}
		if body, err = encodeItem(ctx, pcm, rate); err != nil {
			return nil, fmt.Errorf("content.text: %w", err)
		}
	}
	var tone alertItem
	if a.Content.Tone {
		var err error
		if tone, err = s.tone(); err != nil {
			return nil, fmt.Errorf("attention tone: %w", err)
		}
	}
	c := &alertContent{repeat: tone.frames + body.frames}
	var frames []int
	var gaps []time.Duration
	for r := range a.Repeats {
		if tone.open != nil {
			c.items = append(c.items, media.PlaylistItem{Open: tone.open})
			frames, gaps = append(frames, tone.frames), append(gaps, 0)
		}
		gap := a.Gap
		if r == a.Repeats-1 {
			gap = 0
		}
		c.items = append(c.items, media.PlaylistItem{Open: body.open, Gap: gap})
		frames, gaps = append(frames, body.frames), append(gaps, gap)
	}
	c.frames = media.PlaylistFrames(frames, gaps)
	if a.Repeats > 1 {
		c.gap = (c.frames - a.Repeats*c.repeat) / (a.Repeats - 1)
	}
	return c, nil
}

// encodeItem encodes PCM to Ogg Opus in memory, as an upload would be.
func encodeItem(ctx context.Context, pcm []int16, rate int) (alertItem, error) {
	var wav, ogg bytes.Buffer
	if err := media.EncodeWAV(&wav, pcm, rate, 1); err != nil {
		return alertItem{}, err
	}
	info, err := media.Transcode(ctx, &wav, &ogg, media.Options{})
	if err != nil {
		return alertItem{}, err
	}
	b := ogg.Bytes()
	return alertItem{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, frames: info.Frames}, nil
}

// tolerance is how many frames short of the whole a receiver may play
// and still count as having played it: the stream's edges can be lost.
func (c *alertContent) tolerance() uint64 { return uint64(max(5, c.frames/50)) }

// repeatsPlayed is how many whole repeats played frames cover.
func (c *alertContent) repeatsPlayed(played uint64, repeats int) int {
	n := 0
	for k := 1; k <= repeats; k++ {
		end := uint64((k-1)*(c.repeat+c.gap) + c.repeat)
		if played+c.tolerance() < end {
			break
		}
		n = k
	}
	return n
}

// tuned is told the outcome of every play command the engine sends, for
// what only an alert decides: a receiver out of reach waits for a late
// session of it, and one the fleet cannot serve though online is refused.
// It reports whether the device now waits for a late session (then the
// engine must not retry this one). Every other outcome reaches the report
// through the session's delivery line (lineChanged).
func (s *Alerts) tuned(sessionID, device string, err error) (late bool) {
	if loa.ErrorCode(err) != loa.EUNAVAILABLE || errors.Is(err, context.Canceled) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.bySession[sessionID]
	if l == nil {
		return false
	}
	tr, i := l.dev[device], l.idx[device]
	if tr == nil || tr.session != sessionID {
		return false
	}
	d := &l.a.Report[i]
	if finalDelivery(d) {
		return false
	}
	if unreachable(err) || !s.online(device) {
		// Offline, or the controller's broker link down, between the send
		// and its command: it gets the alert from its beginning when it
		// is back, after this session lets it go.
		d.State, d.Reason = loa.DeliveryQueued, loa.ReasonOffline
		tr.pending, tr.session, tr.blockedBy = true, "", sessionID
		late = true
	} else {
		l.fail(d, loa.ReasonRefused, time.Now().UTC())
		d.Detail = truncate(loa.ErrorMessage(err), 200)
	}
	l.changedLocked()
	return late
}

func (s *Alerts) online(id string) bool {
	st, ok := s.fleet.DeviceState(id)
	return ok && st.Online
}

// lineChanged is the alert's view of its sessions' delivery lines: the
// one place that turns acks, events and preemptions into receiver states
// (Sessions' delivery report) decides acked, started, refused and no_ack
// and sums the frames played; the alert adds the repeats, finished once
// the whole played, and its own clock (no_stream, settling, expiry). A
// line's RTCP evidence is not taken: a receiver plays an alert through
// only when its events say so. Once the session ended, only the stats
// of late finished events still count.
func (s *Alerts) lineChanged(c lineChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.bySession[c.session]
	if l == nil {
		return
	}
	line := &c.line
	tr := l.dev[line.Device]
	if tr == nil || tr.session != c.session {
		return
	}
	d := &l.a.Report[l.idx[line.Device]]
	if finalDelivery(d) && !(l.a.State == loa.AlertActive && revisable(d)) {
		return
	}
	if c.heard {
		if r := l.runs[c.session]; r != nil {
			r.heard = time.Now()
		}
	}
	if !c.ended {
		tr.preempted = line.State == loa.DeliveryFailed && line.Reason == loa.ReasonPreempted
		if !line.AckedAt.IsZero() {
			tr.ackedAt = line.AckedAt
		}
		switch {
		case line.State == loa.DeliveryFailed && (line.Reason == loa.ReasonNoAck || line.Reason == loa.ReasonRefused):
			if !finalDelivery(d) {
				l.fail(d, line.Reason, line.EndedAt)
				d.Detail = line.Detail
			}
		case line.State == loa.DeliveryStarted && line.Evidence == loa.EvidenceEvent:
			d.EndedAt = time.Time{}
			if d.AckedAt.IsZero() {
				d.AckedAt = line.AckedAt
			}
			if d.StartedAt.IsZero() {
				d.StartedAt = line.StartedAt
			}
			d.State, d.Reason = loa.DeliveryStarted, ""
		case line.State == loa.DeliveryAcked || line.State == loa.DeliveryStarted:
			if d.State == loa.DeliveryQueued {
				d.State, d.AckedAt, d.Reason = loa.DeliveryAcked, line.AckedAt, ""
			}
		}
	}
	// Silence after a gap (a stream that died) is not the message.
	if played := line.Played - min(line.Silence, line.Played); played != tr.played {
		tr.played = played
		d.Repeats = l.content.repeatsPlayed(tr.played, l.a.Repeats)
		if tr.played+l.content.tolerance() >= uint64(l.content.frames) {
			end := line.EndedAt
			if end.IsZero() {
				end = time.Now().UTC()
			}
			d.State, d.Reason, d.EndedAt, d.Repeats = loa.DeliveryFinished, "", end, l.a.Repeats
		} else if d.State == loa.DeliveryFailed && d.Reason != loa.ReasonPartial {
			d.State, d.Reason = loa.DeliveryStarted, "" // settled early: the clock decides again
		}
	}
	l.changedLocked()
}

// HandleOutcome follows the engine's outcomes of alert sessions: their
// ends (the receivers they lost to a higher session reach the report
// through their delivery lines).
func (s *Alerts) HandleOutcome(o loa.SessionOutcome) {
	switch o.Kind {
	case loa.OutcomeEnded:
		s.sessionEnded(o.Session, o.State, o.Reason)
	}
}

// sessionEnded is told when a session ends.
func (s *Alerts) sessionEnded(sessionID, state, reason string) {
	if reason == loa.SessionShutdown {
		return // the controller is stopping; the alert is closed at the next start
	}
	s.mu.Lock()
	if l := s.bySession[sessionID]; l != nil {
		if r := l.runs[sessionID]; r != nil && r.endedAt.IsZero() {
			r.endedAt, r.state = time.Now(), state
		}
		l.changedLocked()
	}
	s.mu.Unlock()
	s.poke()
}

// presenceChanged queues the pending devices that came back online for a
// late session, and those that lost their play (rebooted, or offline
// before finishing) to be sent it again. Presence unknown (the
// controller's own broker link is down) says nothing of the receiver.
func (s *Alerts) presenceChanged(st loa.DeviceState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, l := range s.live {
		changed := false
		switch {
		case st.Online:
			changed = s.backLocked(l, st.ID, now) || s.resendLocked(l, st, now)
		case st.Presence == loa.PresenceOffline:
			if tr := l.dev[st.ID]; tr != nil && tr.session != "" && l.a.Report[l.idx[st.ID]].State != loa.DeliveryFinished {
				tr.offline = true
			}
		}
		if changed {
			l.changedLocked()
		}
	}
}

// resendLocked queues device st.ID of l for the whole alert again, in a
// late session, if it lost its play and is back online before the
// expiry: it rebooted since its session took it (whatever its line says:
// a new boot plays nothing of the old session), or it went offline
// during its session and its play settled short of the whole (by its own
// finished event, or with none after alertSettleMax). At most
// alertResends times per receiver. The late session waits for the end of
// the session still holding it.
func (s *Alerts) resendLocked(l *liveAlert, st loa.DeviceState, now time.Time) bool {
	tr := l.dev[st.ID]
	if tr == nil || tr.pending || tr.back || tr.session == "" || !st.Online || l.a.State != loa.AlertActive || tr.resends >= alertResends {
		return false
	}
	if tr.preempted {
		return false // a higher session (a newer emergency) took it: a late session would fight it
	}
	d := &l.a.Report[l.idx[st.ID]]
	if d.State == loa.DeliveryFinished || (d.State == loa.DeliveryFailed && !lostPlay(d.Reason)) {
		return false
	}
	rebooted := tr.boot != 0 && st.Boot != 0 && st.Boot != tr.boot
	lost := tr.offline && finalDelivery(d)
	if lost && tr.played == 0 {
		// No finished event of its own said how much it played: one held
		// in its outbox while it was away may still say it played the
		// whole, so the wait for late reports runs out first.
		if r := l.runs[tr.session]; r == nil || r.endedAt.IsZero() || now.Sub(r.endedAt) < alertSettleMax {
			lost = false
		}
	}
	if !rebooted && !lost {
		return false
	}
	if r := l.runs[tr.session]; r != nil && r.endedAt.IsZero() {
		tr.blockedBy = tr.session
	}
	tr.resends++
	tr.session, tr.pending, tr.back = "", true, true
	d.State, d.Reason, d.Detail, d.EndedAt = loa.DeliveryQueued, "", "", time.Time{}
	if l.lateDue.IsZero() {
		l.lateDue = now.Add(s.lateWait)
	}
	s.logger.Info("alert to be sent again to a receiver that lost its play", "alert", l.a.ID, "device", st.ID,
		"rebooted", rebooted, "resend", tr.resends)
	return true
}

// lostPlay reports whether a receiver that failed for reason may have
// lost its play to a reboot or an outage of its own, and may be sent
// the alert again; a refusal, a cancel or the expiry stand.
func lostPlay(reason string) bool {
	switch reason {
	case loa.ReasonPartial, loa.ReasonInterrupted, loa.ReasonNoStream, loa.ReasonNoAck, loa.ReasonNoReport, loa.ReasonOffline:
		return true
	}
	return false
}

// backLocked marks a pending device of l as back online.
func (s *Alerts) backLocked(l *liveAlert, id string, now time.Time) bool {
	tr := l.dev[id]
	if tr == nil || !tr.pending || tr.back || l.a.State != loa.AlertActive {
		return false
	}
	tr.back = true
	if l.lateDue.IsZero() {
		l.lateDue = now.Add(s.lateWait)
	}
	return true
}

// step runs the alert clock once.
func (s *Alerts) step(ctx context.Context, now time.Time) {
	type late struct {
		l    *liveAlert
		sess *loa.Session
	}
	type stop struct{ session, by string }
	type lateStored struct {
		l    *liveAlert
		run  *alertRun
		devs []string
	}
	var storedLate []lateStored
	var (
		starts []late
		stops  []stop
		saves  []*loa.Alert
		ended  []*liveAlert
	)
	s.mu.Lock()
	for _, l := range s.live {
		if l.final {
			continue
		}
		for _, sid := range s.expireLocked(l, now) {
			stops = append(stops, stop{sid, loa.Origin{Kind: loa.OriginAlert, ID: l.a.ID}.String()})
		}
		s.settleLocked(l, now)
		s.settleStoredLocked(l, now)
		if run, devs := s.lateStoredLocked(l, now); run != nil {
			storedLate = append(storedLate, lateStored{l, run, devs})
		}
		if sess := s.lateLocked(l, now); sess != nil {
			starts = append(starts, late{l, sess})
		}
		final := s.finishLocked(l, now)
		if final || (l.dirty && now.Sub(l.savedAt) >= s.persist) {
			l.dirty, l.savedAt = false, now
			saves = append(saves, l.snapshot())
		}
		if final {
			ended = append(ended, l)
		}
	}
	s.mu.Unlock()
	for _, st := range stops {
		if err := s.sessions.StopSession(ctx, st.session, st.by, "alert expired"); err != nil && loa.ErrorCode(err) != loa.ECONFLICT {
			s.logger.Warn("expired alert session not stopped", "session", st.session, "err", err)
		}
	}
	for _, st := range storedLate {
		s.playStored(st.l, st.run, st.devs)
	}
	for _, st := range starts {
		if err := s.startSession(ctx, st.l, st.sess); err != nil {
			s.logger.Error("late alert session not started", "alert", st.l.a.ID, "err", err)
		}
	}
	for _, a := range saves {
		if err := s.db.PutAlert(context.WithoutCancel(ctx), a); err != nil {
			s.logger.Error("alert report not written", "alert", a.ID, "err", err)
		}
	}
	// Ended alerts leave memory only once their final report is stored,
	// so a reader never sees an older one.
	s.mu.Lock()
	for _, l := range ended {
		delete(s.live, l.a.ID)
		for id := range l.runs {
			delete(s.bySession, id)
		}
		if l.smsSession != "" {
			delete(s.bySession, l.smsSession)
		}
	}
	s.mu.Unlock()
}

// expireLocked ends l at its expiry: receivers still waiting fail, and
// the sessions to stop are returned.
func (s *Alerts) expireLocked(l *liveAlert, now time.Time) []string {
	if l.a.State != loa.AlertActive || now.Before(l.a.ExpiresAt) {
		return nil
	}
	l.expired = true
	l.a.State, l.a.Reason, l.a.EndedAt = loa.AlertExpired, "expired", now.UTC()
	for i := range l.a.Report {
		d := &l.a.Report[i]
		if finalDelivery(d) {
			continue
		}
		if tr := l.dev[d.Device]; tr.pending && !tr.back {
			l.fail(d, loa.ReasonOffline, now.UTC())
		} else {
			l.fail(d, loa.ReasonExpiredHere, now.UTC())
		}
	}
	l.changedLocked()
	return s.endStoredLocked(l, now)
}

// running lists l's sessions still streaming.
func (l *liveAlert) running() []string {
	var ids []string
	for id, r := range l.runs {
		if r.endedAt.IsZero() {
			ids = append(ids, id)
		}
	}
	return ids
}

// settleLocked fails the receivers that cannot finish any more: acked with
// no frame played a while after their stream began (no_stream), and those
// whose session ended without their report of the whole.
func (s *Alerts) settleLocked(l *liveAlert, now time.Time) {
	changed := false
	if now.Sub(l.presence) >= time.Second {
		// A device back online whose status change raced the send.
		l.presence = now
		for id, tr := range l.dev {
			if tr.pending && !tr.back && s.online(id) {
				changed = s.backLocked(l, id, now) || changed
			}
			if !tr.pending && tr.session != "" {
				// A reboot or a return whose status change raced its
				// play's settling.
				if st, ok := s.fleet.DeviceState(id); ok {
					changed = s.resendLocked(l, st, now) || changed
				}
			}
		}
	}
	for i := range l.a.Report {
		d := &l.a.Report[i]
		tr := l.dev[d.Device]
		if finalDelivery(d) || tr.session == "" {
			continue
		}
		r := l.runs[tr.session]
		if r == nil {
			continue
		}
		if !r.endedAt.IsZero() {
			// Reports still arriving (a congested broker) extend the wait,
			// up to alertSettleMax.
			quiet := now.Sub(later(r.endedAt, r.heard)) >= s.delay+s.settle
			if !quiet && now.Sub(r.endedAt) < alertSettleMax {
				continue
			}
			reason := loa.ReasonInterrupted // a higher session took it and kept it
			switch {
			case r.state == loa.SessionFailed:
				reason = loa.ReasonFailed
			case d.State == loa.DeliveryQueued:
				reason = loa.ReasonNoAck
			case tr.preempted:
			case d.State == loa.DeliveryAcked:
				reason = loa.ReasonNoStream
			case d.State == loa.DeliveryStarted:
				reason = loa.ReasonPartial
			}
			l.fail(d, reason, now.UTC())
			changed = true
			continue
		}
		if d.State == loa.DeliveryAcked && !tr.preempted {
			first, ok := s.sessions.FirstSent(tr.session)
			if ok && now.Sub(later(first, tr.ackedAt)) > s.delay+s.noStream {
				l.fail(d, loa.ReasonNoStream, now.UTC())
				changed = true
			}
		}
	}
	if changed {
		l.changedLocked()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lateLocked returns the late session for the devices of l back online,
// once the batch is due, attached and ready to start.
func (s *Alerts) lateLocked(l *liveAlert, now time.Time) *loa.Session {
	if l.lateDue.IsZero() || now.Before(l.lateDue) || l.a.State != loa.AlertActive {
		return nil
	}
	var devs []string
	wait := false
	for id, tr := range l.dev {
		if !tr.back {
			continue
		}
		if r := l.runs[tr.blockedBy]; r != nil && r.endedAt.IsZero() {
			wait = true // the session that failed to reach it still holds it
			continue
		}
		devs = append(devs, id)
	}
	l.lateDue = time.Time{}
	if wait {
		l.lateDue = now.Add(s.lateWait)
	}
	if len(devs) == 0 {
		return nil
	}
	slices.Sort(devs)
	sess := s.newSession(l.a, l.content, devs)
	s.attachLocked(l, sess, devs, true)
	for _, id := range devs {
		d := &l.a.Report[l.idx[id]]
		d.State, d.Reason, d.Late, d.AckedAt, d.StartedAt = loa.DeliveryQueued, "", true, time.Time{}, time.Time{}
	}
	l.changedLocked()
	s.logger.Info("alert sent to receivers back online", "alert", l.a.ID, "session", sess.ID, "devices", len(devs))
	return sess
}

// finishLocked ends l once every session stopped and every receiver is
// settled, and reports whether it did.
func (s *Alerts) finishLocked(l *liveAlert, now time.Time) bool {
	if l.final || len(l.running()) > 0 {
		return false
	}
	for i := range l.a.Report {
		if !finalDelivery(&l.a.Report[i]) {
			return false
		}
	}
	if l.a.State == loa.AlertActive {
		l.a.State, l.a.EndedAt = loa.AlertFinished, now.UTC()
	}
	l.final = true
	l.changedLocked()
	if s.OnEnd != nil {
		s.OnEnd(l.a)
	}
	s.logger.Info("alert ended", "alert", l.a.ID, "state", l.a.State, "receivers", len(l.a.Report))
	return true
}

// CancelAlert stops an active alert everywhere: its sessions stop (and
// with them the receivers), and every receiver that has not finished is
// failed as cancelled.
func (s *Alerts) CancelAlert(ctx context.Context, id, reason string) error {
	s.mu.Lock()
	l := s.live[id]
	if l == nil || l.a.State != loa.AlertActive {
		s.mu.Unlock()
		a, err := s.Alert(ctx, id)
		if err != nil {
			return err
		}
		return loa.Errorf(loa.ECONFLICT, "alert %s is already %s", id, a.State)
	}
	if reason == "" {
		reason = "cancelled"
	}
	now := time.Now().UTC()
	l.a.State, l.a.Reason, l.a.EndedAt = loa.AlertCancelled, reason, now
	for i := range l.a.Report {
		if d := &l.a.Report[i]; !finalDelivery(d) {
			l.fail(d, loa.ReasonCancelled, now)
		}
	}
	l.changedLocked()
	untune := l.storedPlaying()
	stops := s.endStoredLocked(l, time.Now())
	s.mu.Unlock()
	s.untuneStored(untune, "alert cancelled")
	var errs []error
	for _, sid := range stops {
		if err := s.sessions.StopSession(ctx, sid, loa.Origin{Kind: loa.OriginAlert, ID: id}.String(), "alert cancelled: "+reason); err != nil && loa.ErrorCode(err) != loa.ECONFLICT && loa.ErrorCode(err) != loa.ENOTFOUND {
			errs = append(errs, err)
		}
	}
	s.poke()
	s.logger.Info("alert cancelled", "alert", id, "reason", reason, "sessions", len(stops))
	return errors.Join(errs...)
}

// Alert returns the alert, live while it is active.
func (s *Alerts) Alert(ctx context.Context, id string) (*loa.Alert, error) {
	s.mu.Lock()
	if l := s.live[id]; l != nil {
		a := l.snapshot()
		s.mu.Unlock()
		return a, nil
	}
	s.mu.Unlock()
	return s.db.Alert(ctx, id)
}

// Alerts returns every alert, newest first, the active ones live.
func (s *Alerts) Alerts(ctx context.Context) ([]*loa.Alert, error) {
	list, err := s.db.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range list {
		if l := s.live[a.ID]; l != nil {
			list[i] = l.snapshot()
		}
	}
	return list, nil
}

// watchEvery is the shortest interval between two calls of a watcher:
// a thousand receivers acking within a second is a few reports, not a
// thousand.
const watchEvery = 200 * time.Millisecond

// WatchAlert calls fn with the alert now and after its changes (at most
// every watchEvery) until ctx ends or the alert has ended.
func (s *Alerts) WatchAlert(ctx context.Context, id string, fn func(*loa.Alert)) error {
	for {
		s.mu.Lock()
		l := s.live[id]
		if l == nil {
			s.mu.Unlock()
			a, err := s.db.Alert(ctx, id)
			if err != nil {
				return err
			}
			fn(a)
			return nil
		}
		a, changed, final := l.snapshot(), l.changed, l.final
		s.mu.Unlock()
		fn(a)
		if final {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchEvery):
		}
	}
}

// Recover picks up the alerts that were active when the controller last
// stopped (shut down or killed). Their sessions are not resumed (a
// warning joined in its middle is not the warning): they are closed as
// stopped. An alert not yet expired goes on: every receiver that has not
// played it through, by its report or its sessions' stored lines, waits
// as if offline and gets the whole alert from its beginning in a late
// session once it is online; its report, cancel and expiry go on as
// before the restart. One that expired meanwhile is closed: its
// receivers that did not finish failed. It runs before sessions are
// resumed, and before Run.
func (s *Alerts) Recover(ctx context.Context) error {
	sessions, err := s.db.Sessions(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	byAlert := map[string][]*loa.Session{}
	for _, sess := range sessions {
		if sess.Origin.Kind != loa.OriginAlert {
			continue
		}
		byAlert[sess.Origin.ID] = append(byAlert[sess.Origin.ID], sess)
		if sess.State == loa.SessionPlaying {
			sess.State, sess.Reason, sess.EndedAt = loa.SessionStopped, "controller restarted", now.UTC()
			if err := s.db.PutSession(ctx, sess); err != nil {
				return err
			}
			s.sessions.closeDelivery(ctx, sess)
		}
	}
	alerts, err := s.db.Alerts(ctx)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if a.State != loa.AlertActive {
			continue
		}
		played := s.playedBefore(ctx, byAlert[a.ID])
		var content *alertContent
		if now.Before(a.ExpiresAt) {
			if content, err = s.content(ctx, a); err != nil {
				s.logger.Error("alert not resumed after a restart: its content", "alert", a.ID, "err", err)
			}
		}
		if content == nil {
			s.closeRecovered(a, played, alertFrames(byAlert[a.ID]), now)
			if err := s.db.PutAlert(ctx, a); err != nil {
				return err
			}
			s.logger.Warn("alert ended while the controller was down", "alert", a.ID, "state", a.State)
			continue
		}
		s.resume(a, content, played, now)
	}
	return nil
}

// playedBefore returns, per receiver, the most frames (silence left out)
// it reported playing in one of sessions, from their stored lines: a
// finished event handled before the restart whose alert report was not
// yet written still counts.
func (s *Alerts) playedBefore(ctx context.Context, sessions []*loa.Session) map[string]uint64 {
	played := map[string]uint64{}
	for _, sess := range sessions {
		lines, err := s.db.Deliveries(ctx, sess.ID)
		if err != nil {
			s.logger.Warn("alert session's delivery lines not read", "session", sess.ID, "err", err)
			continue
		}
		for _, line := range lines {
			played[line.Device] = max(played[line.Device], line.Played-min(line.Silence, line.Played))
		}
	}
	return played
}

// alertFrames is the length in frames of the alert its sessions carried,
// from their max duration (newSession); 0 if none is known.
func alertFrames(sessions []*loa.Session) int {
	for _, sess := range sessions {
		if sess.MaxDuration > alertMargin {
			return int((sess.MaxDuration - alertMargin) / protocol.FrameDuration)
		}
	}
	return 0
}

// closeRecovered ends a, found active after a restart and not resumed:
// expired, or finished if its content is gone; receivers that played it
// through (played, by their lines, of frames) finished, the others failed.
func (s *Alerts) closeRecovered(a *loa.Alert, played map[string]uint64, frames int, now time.Time) {
	a.State, a.Reason, a.EndedAt = loa.AlertExpired, "expired", now.UTC()
	if now.Before(a.ExpiresAt) {
		a.State, a.Reason = loa.AlertFinished, "controller restarted"
	}
	tolerance := uint64(max(5, frames/50)) // alertContent.tolerance
	for i := range a.Report {
		d := &a.Report[i]
		switch {
		case finalDelivery(d):
			continue
		case frames > 0 && played[d.Device] > 0 && played[d.Device]+tolerance >= uint64(frames):
			d.State, d.Reason, d.Repeats = loa.DeliveryFinished, "", a.Repeats
		case d.State == loa.DeliveryQueued && d.Reason == loa.ReasonOffline:
			d.State = loa.DeliveryFailed
		case a.State == loa.AlertExpired:
			d.State, d.Reason = loa.DeliveryFailed, loa.ReasonExpiredHere
		default:
			d.State, d.Reason = loa.DeliveryFailed, loa.ReasonInterrupted
		}
		d.EndedAt = now.UTC()
	}
}

// resume makes a, found active after a restart, live again: its
// receivers that played it through finished, every other one waiting for
// a late session once online.
func (s *Alerts) resume(a *loa.Alert, c *alertContent, played map[string]uint64, now time.Time) {
	l := &liveAlert{a: a, idx: make(map[string]int, len(a.Report)), dev: make(map[string]*track, len(a.Report)),
		content: c, runs: map[string]*alertRun{}, changed: make(chan struct{}), savedAt: now}
	waiting := 0
	for i := range a.Report {
		d := &a.Report[i]
		l.idx[d.Device], l.dev[d.Device] = i, &track{}
		if d.State == loa.DeliveryFinished {
			continue
		}
		if p := played[d.Device]; p > 0 && p+c.tolerance() >= uint64(c.frames) {
			d.State, d.Reason, d.Detail, d.EndedAt, d.Repeats = loa.DeliveryFinished, "", "", now.UTC(), a.Repeats
			continue
		}
		// Checked against presence at the clock's first step (l.presence
		// is zero): the late session starts once it is online.
		d.State, d.Reason, d.Detail, d.EndedAt = loa.DeliveryQueued, loa.ReasonOffline, "", time.Time{}
		l.dev[d.Device].pending = true
		waiting++
	}
	l.dirty = true
	s.mu.Lock()
	s.live[a.ID] = l
	s.mu.Unlock()
	s.logger.Warn("alert resumed after a controller restart: its receivers that had not played it get it from its beginning",
		"alert", a.ID, "waiting", waiting, "expires_at", a.ExpiresAt)
}

// AlertTuner is the engine's Tuner: the fleet's, with every play
// command's outcome told to every session's delivery report and to Alerts
// (set before the first session starts).
type AlertTuner struct {
	Tuner
	Alerts *Alerts
}

func (t *AlertTuner) Tune(ctx context.Context, deviceID string, args protocol.PlayArgs) error {
	err := t.Tuner.Tune(ctx, deviceID, args)
	t.Alerts.sessions.tuned(args.Session, deviceID, err) // every session's delivery report
	if t.Alerts.tuned(args.Session, deviceID, err) {
		// A late session of the alert plays it from its beginning; the
		// engine retrying this one would join it in the middle.
		return settled{err}
	}
	return err
}

// Reception is the engine's RTCP evidence of a receiver (broadcast's
// Config.Reception), for the sessions' delivery reports.
func (t *AlertTuner) Reception(sessionID, deviceID string, received uint64) {
	t.Alerts.sessions.Reception(sessionID, deviceID, received)
}

// unreachable reports whether the fleet said the device could not be
// reached now (offline, or its broker link down).
func unreachable(err error) bool {
	var u interface{ Unreachable() bool }
	return errors.As(err, &u) && u.Unreachable()
}

// settled is an unreachable error the engine must not retry.
type settled struct{ err error }

func (e settled) Error() string     { return e.err.Error() }
func (e settled) Unwrap() error     { return e.err }
func (e settled) Unreachable() bool { return false }

// Refused is told of a device the engine did not tune at all (a plain
// receiver when SRTP is required): its delivery fails refused, saying why.
func (t *AlertTuner) Refused(sessionID, deviceID string, err error) {
	t.Alerts.sessions.tuned(sessionID, deviceID, err)
	t.Alerts.tuned(sessionID, deviceID, err)
}
