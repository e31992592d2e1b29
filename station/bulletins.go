package station

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/store"
)

// Bulletins implements loa.BulletinService: the province publishes a
// bulletin to its communes' inboxes; a commune accepts it into play now,
// a one-off schedule or a playlist slot, or declines it; Check follows
// each commune to aired from its receivers' delivery lines (never from
// the controller's own say-so), expires what outlived its validity and
// keeps the bulletin_deadline_missed alarm naming the communes that have
// not scheduled an ưu tiên bulletin by its deadline.
type Bulletins struct {
	db        *store.DB
	media     *Media
	speech    media.Synthesizer // nil: text bulletins are EUNAVAILABLE
	sessions  loa.SessionService
	schedules loa.ScheduleService
	alarms    BulletinAlarms // nil: no alarm
	logger    *slog.Logger
	// Now is the clock of deadlines and validity; nil: time.Now.
	Now func() time.Time

	mu       sync.Mutex      // one change of a bulletin's tracking at a time
	alarmMsg string          // the deadline alarm's message as raised ("" none)
	late     map[string]bool // the communes it names; nil: not read since start
}

// BulletinAlarms raises the deadline alarm. While no commune is newly
// late it is amended, not raised again, so an acknowledgement holds and
// nobody is told twice (fewer communes late, a restart).
type BulletinAlarms interface {
	ClearStation(kind, why string)
	RaiseStationIn(area, kind, severity string, value, threshold float64, msg string)
	AmendStation(area, kind, severity string, value, threshold float64, msg string)
	ActiveStation(kind string) (loa.Alarm, bool)
}

var _ loa.BulletinService = (*Bulletins)(nil)

// NewBulletins returns the bulletin service of db: text is spoken by
// speech into media items, acceptance starts sessions and schedules
// through sessions and schedules, the deadline alarm goes to alarms.
func NewBulletins(db *store.DB, m *Media, speech media.Synthesizer, sessions loa.SessionService, schedules loa.ScheduleService, alarms BulletinAlarms, logger *slog.Logger) *Bulletins {
	return &Bulletins{db: db, media: m, speech: speech, sessions: sessions, schedules: schedules, alarms: alarms, logger: logger}
}

func (s *Bulletins) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Publish checks b, speaks its text into a media item when it names
// none, and puts it in each target commune's inbox.
func (s *Bulletins) Publish(ctx context.Context, b *loa.Bulletin) error {
	if err := b.Validate(); err != nil {
		return err
	}
	for _, a := range b.Areas {
		if _, err := s.db.Area(ctx, a); loa.ErrorCode(err) == loa.ENOTFOUND {
			return loa.Errorf(loa.ENOTFOUND, "areas: no area %q", a)
		} else if err != nil {
			return err
		}
	}
	if b.MediaID != "" {
		m, err := s.db.Media(ctx, b.MediaID)
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return loa.Errorf(loa.ENOTFOUND, "media_id: no media %q", b.MediaID)
		} else if err != nil {
			return err
		}
		if m.State == loa.MediaDraft {
			return notApproved("media_id", m.ID)
		}
	} else {
		m, err := s.speak(ctx, b.Title, b.Text, b.CreatedBy)
		if err != nil {
			return err
		}
		b.MediaID = m.ID
	}
	return s.deliver(ctx, b)
}

// speak makes a media item of text, spoken as a text alert is.
func (s *Bulletins) speak(ctx context.Context, title, text, by string) (*loa.Media, error) {
	if s.speech == nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "text: no speech engine is configured; send a media item")
	}
	wav, err := media.SpeechWAV(ctx, s.speech, text, false)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	return s.media.ImportMedia(ctx, title, bytes.NewReader(wav), by)
}

// deliver stores b, new, with every commune's entry received now.
func (s *Bulletins) deliver(ctx context.Context, b *loa.Bulletin) error {
	now := s.now()
	b.ID = "bl-" + newID()[:12]
	b.CreatedAt = now
	b.Communes = b.Communes[:0]
	for _, a := range b.Areas {
		b.Communes = append(b.Communes, loa.BulletinCommune{AreaID: a, State: loa.BulletinReceived, ReceivedAt: now})
	}
	if err := s.db.PutBulletin(ctx, b); err != nil {
		return err
	}
	s.logger.Info("bulletin published", "bulletin", b.ID, "level", b.Level, "areas", b.Areas, "by", b.CreatedBy)
	return nil
}

func (s *Bulletins) Bulletin(ctx context.Context, id string) (*loa.Bulletin, error) {
	return s.db.Bulletin(ctx, id)
}

func (s *Bulletins) Bulletins(ctx context.Context) ([]*loa.Bulletin, error) {
	return s.db.Bulletins(ctx)
}

// undecided returns area's entry of b while it waits in the inbox.
func undecided(b *loa.Bulletin, area string) (*loa.BulletinCommune, error) {
	c := b.Commune(area)
	if c == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "area_id: bulletin %q is not for %q", b.ID, area)
	}
	if c.State != loa.BulletinReceived {
		return nil, loa.Errorf(loa.ECONFLICT, "bulletin %q is %s in %q already", b.ID, c.State, area)
	}
	return c, nil
}

// Accept puts bulletin id into commune a.AreaID's programme as a.How
// says, and marks it scheduled there.
func (s *Bulletins) Accept(ctx context.Context, id string, a loa.BulletinAcceptance) (*loa.Bulletin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.db.Bulletin(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := undecided(b, a.AreaID); err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(b.ValidUntil) {
		return nil, loa.Errorf(loa.ECONFLICT, "bulletin %q is no longer valid", id)
	}
	prio := loa.PriorityNormal
	if b.Level == loa.BulletinPriority {
		prio = loa.PriorityHigh
	}
	made := loa.BulletinCommune{How: a.How, By: a.By, AcceptedAt: now}
	switch a.How {
	case loa.AcceptPlayNow:
		if now.Before(b.ValidFrom) {
			return nil, loa.Errorf(loa.EINVALID, "how: the bulletin is valid from %s", b.ValidFrom.Format(time.RFC3339))
		}
		sess := &loa.Session{MediaID: b.MediaID, Targets: loa.Targets{Areas: []string{a.AreaID}}, Priority: prio,
			Origin: loa.Origin{Kind: loa.OriginManual}, CreatedBy: a.By}
		if err := s.sessions.StartSession(ctx, sess); err != nil {
			return nil, err
		}
		made.SessionID, made.At = sess.ID, sess.StartedAt
	case loa.AcceptSchedule:
		a.At = a.At.Truncate(time.Second) // a rule's time has whole seconds
		if a.At.IsZero() || a.At.Before(b.ValidFrom) || !a.At.Before(b.ValidUntil) || !a.At.After(now) {
			return nil, loa.Errorf(loa.EINVALID, "at: a time to come within the bulletin's validity")
		}
		sc, err := s.scheduleOnce(ctx, b, a, prio)
		if err != nil {
			return nil, err
		}
		made.ScheduleID, made.At = sc.ID, a.At.UTC()
	case loa.AcceptPlaylist:
		p, err := s.intoPlaylist(ctx, b, a)
		if err != nil {
			return nil, err
		}
		made.PlaylistID = p.ID
	default:
		return nil, loa.Errorf(loa.EINVALID, "how: play_now, schedule or playlist, not %q", a.How)
	}
	return s.setCommune(ctx, id, a.AreaID, func(c *loa.BulletinCommune) {
		c.State = loa.BulletinScheduled
		c.How, c.By, c.AcceptedAt, c.At = made.How, made.By, made.AcceptedAt, made.At
		c.SessionID, c.ScheduleID, c.PlaylistID = made.SessionID, made.ScheduleID, made.PlaylistID
	})
}

// scheduleOnce makes a one-off schedule of b for the commune at a.At.
func (s *Bulletins) scheduleOnce(ctx context.Context, b *loa.Bulletin, a loa.BulletinAcceptance, prio loa.Priority) (*loa.Schedule, error) {
	zone, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		return nil, err
	}
	at := a.At.In(zone)
	sc := &loa.Schedule{
		ID: b.ID + "-" + a.AreaID, Name: b.Title,
		Rule:    loa.Rule{Kind: loa.RuleOnce, Date: at.Format(time.DateOnly), Time: at.Format(time.TimeOnly), Zone: loa.DefaultZone},
		Content: loa.Content{MediaID: b.MediaID}, Targets: loa.Targets{Areas: []string{a.AreaID}},
		Priority: prio, Enabled: true, CreatedBy: a.By,
	}
	if len(sc.ID) > 64 {
		sc.ID = b.ID + "-" + newID()[:8]
	}
	if err := s.schedules.CreateSchedule(ctx, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// intoPlaylist puts b in a copy of playlist a.PlaylistID at a.Position
// and has the commune's schedules that play the playlist play the copy:
// playlists are never changed in place (a draft or a running session may
// hold one).
func (s *Bulletins) intoPlaylist(ctx context.Context, b *loa.Bulletin, a loa.BulletinAcceptance) (*loa.Playlist, error) {
	old, err := s.db.Playlist(ctx, a.PlaylistID)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, loa.Errorf(loa.ENOTFOUND, "playlist_id: no playlist %q", a.PlaylistID)
	} else if err != nil {
		return nil, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	tree := loa.NewAreaTree(areas)
	all, err := s.schedules.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var using []*loa.Schedule
	for _, sc := range all {
		if sc.Content.PlaylistID != old.ID || len(sc.Targets.Devices) > 0 || len(sc.Targets.Areas) == 0 {
			continue
		}
		if !slices.ContainsFunc(sc.Targets.Areas, func(t string) bool { return !tree.Within(t, a.AreaID) }) {
			using = append(using, sc)
		}
	}
	if len(using) == 0 {
		return nil, loa.Errorf(loa.EINVALID, "playlist_id: no schedule of %q plays playlist %q", a.AreaID, old.ID)
	}
	p := &loa.Playlist{ID: strings.TrimSuffix(old.ID[:min(len(old.ID), 40)], "-") + "-" + b.ID, Name: old.Name + " + " + b.Title, CreatedBy: a.By}
	pos := min(max(a.Position, 0), len(old.Items))
	p.Items = slices.Concat(old.Items[:pos], []loa.PlaylistItem{{MediaID: b.MediaID}}, old.Items[pos:])
	if err := s.db.CreatePlaylist(ctx, p); err != nil {
		return nil, err
	}
	for _, sc := range using {
		cp := *sc
		cp.Content.PlaylistID = p.ID
		if err := s.schedules.UpdateSchedule(ctx, &cp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Decline closes bulletin id in commune area, with the reason.
func (s *Bulletins) Decline(ctx context.Context, id, area, by, reason string) (*loa.Bulletin, error) {
	if reason = strings.TrimSpace(reason); reason == "" || len(reason) > loa.MaxBulletinReason {
		return nil, loa.Errorf(loa.EINVALID, "reason: required, at most %d bytes", loa.MaxBulletinReason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.db.Bulletin(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := undecided(b, area); err != nil {
		return nil, err
	}
	now := s.now()
	return s.setCommune(ctx, id, area, func(c *loa.BulletinCommune) {
		c.State, c.By, c.DeclinedAt, c.Reason = loa.BulletinDeclined, by, now, reason
	})
}

// Report moves a commune's entry as its own controller reports it
// (the feed): scheduled, declined, or aired with its receivers' count.
func (s *Bulletins) Report(ctx context.Context, id string, r loa.FeedReport) (*loa.Bulletin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.db.Bulletin(ctx, id)
	if err != nil {
		return nil, err
	}
	c := b.Commune(r.AreaID)
	if c == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "area_id: bulletin %q is not for %q", id, r.AreaID)
	}
	if c.State == r.State && r.State != loa.BulletinAired {
		return b, nil
	}
	if err := loa.FeedReportAllowed(c.State, r.State); err != nil {
		return nil, err
	}
	now := s.now()
	return s.setCommune(ctx, id, r.AreaID, func(c *loa.BulletinCommune) {
		if c.State == loa.BulletinReceived && r.State != loa.BulletinDeclined {
			c.How, c.AcceptedAt, c.At = r.How, now, r.At
		}
		c.State, c.By = r.State, r.By
		switch r.State {
		case loa.BulletinDeclined:
			c.DeclinedAt, c.Reason = now, r.Reason
		case loa.BulletinAired:
			c.AiredAt, c.Receivers = r.AiredAt, r.Receivers
			if c.AiredAt.IsZero() {
				c.AiredAt = now
			}
		}
	})
}

// setCommune changes area's entry of bulletin id, then checks the
// deadline alarm. The caller holds mu.
func (s *Bulletins) setCommune(ctx context.Context, id, area string, fn func(c *loa.BulletinCommune)) (*loa.Bulletin, error) {
	var after loa.BulletinCommune
	b, err := s.db.UpdateBulletin(ctx, id, func(b *loa.Bulletin) error {
		c := b.Commune(area)
		if c == nil {
			return loa.Errorf(loa.ENOTFOUND, "area_id: bulletin %q is not for %q", id, area)
		}
		fn(c)
		after = *c
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.logger.Info("bulletin tracking", "bulletin", id, "area", area, "state", after.State, "how", after.How, "by", after.By)
	if err := s.alarm(ctx); err != nil {
		s.logger.Warn("bulletin deadline alarm not checked", "err", err)
	}
	return b, nil
}

// Run checks every bulletin each interval until ctx ends.
func (s *Bulletins) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("bulletins not checked", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check follows every open commune entry: aired once its receivers'
// delivery lines show the bulletin played, expired past the validity,
// missed past an ưu tiên deadline while still undecided; then raises or
// clears the deadline alarm.
func (s *Bulletins) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.db.Bulletins(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	var ev *evidence
	for _, b := range list {
		for _, c := range b.Communes {
			open := c.State == loa.BulletinReceived || c.State == loa.BulletinScheduled || c.State == loa.BulletinAired
			if !open || (c.State == loa.BulletinAired && !now.Before(b.ValidUntil.Add(time.Hour))) {
				continue
			}
			next := c
			if c.State == loa.BulletinScheduled || c.State == loa.BulletinAired {
				if ev == nil {
					if ev, err = s.loadEvidence(ctx); err != nil {
						return err
					}
				}
				if at, n := ev.aired(b, &c); n > 0 {
					next.State, next.AiredAt, next.Receivers = loa.BulletinAired, at, n
				}
			}
			switch {
			case next.State != loa.BulletinAired && !now.Before(b.ValidUntil):
				next.State, next.ExpiredAt = loa.BulletinExpired, now
			case next.State == loa.BulletinReceived && b.Level == loa.BulletinPriority && !now.Before(b.MustAirBy):
				next.Missed = true
			}
			if next == c {
				continue
			}
			if _, err := s.setCommuneQuiet(ctx, b.ID, c.AreaID, next); err != nil {
				return err
			}
		}
	}
	return s.alarm(ctx)
}

// setCommuneQuiet stores next as area's entry; the caller checks the
// alarm.
func (s *Bulletins) setCommuneQuiet(ctx context.Context, id, area string, next loa.BulletinCommune) (*loa.Bulletin, error) {
	b, err := s.db.UpdateBulletin(ctx, id, func(b *loa.Bulletin) error {
		if c := b.Commune(area); c != nil {
			*c = next
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.logger.Info("bulletin tracking", "bulletin", id, "area", area, "state", next.State, "missed", next.Missed, "receivers", next.Receivers)
	return b, nil
}

// alarm raises bulletin_deadline_missed naming every commune still
// undecided past an ưu tiên deadline of a valid bulletin, or clears it
// when there is none. The caller holds mu.
func (s *Bulletins) alarm(ctx context.Context) error {
	if s.alarms == nil {
		return nil
	}
	list, err := s.db.Bulletins(ctx)
	if err != nil {
		return err
	}
	var names, parts, ids []string
	for _, b := range list {
		var late []string
		for _, c := range b.Communes {
			if c.State == loa.BulletinReceived && c.Missed {
				late = append(late, s.areaName(ctx, c.AreaID))
				ids = append(ids, c.AreaID)
			}
		}
		if len(late) > 0 {
			names = append(names, late...)
			parts = append(parts, fmt.Sprintf("%q: %s", b.Title, strings.Join(late, ", ")))
		}
	}
	slices.Sort(parts)
	msg := strings.Join(parts, "; ")
	if msg != "" {
		msg = "priority bulletin not scheduled by its deadline in " + msg
	}
	if s.late == nil { // first look since start: the alarm a previous run raised
		s.late = map[string]bool{}
		if al, ok := s.alarms.ActiveStation(loa.AlarmBulletinDeadline); ok {
			s.alarmMsg = al.Msg
			for _, n := range names {
				if strings.Contains(al.Msg, n) {
					s.late[n] = true
				}
			}
		}
	}
	if msg == s.alarmMsg {
		return nil
	}
	fresh := false
	for _, n := range names {
		fresh = fresh || !s.late[n]
	}
	switch {
	case msg == "":
		s.alarms.ClearStation(loa.AlarmBulletinDeadline, "every priority bulletin is scheduled, declined or expired")
	case fresh:
		s.alarms.RaiseStationIn(s.commonArea(ctx, ids), loa.AlarmBulletinDeadline, loa.SeverityWarning, float64(len(names)), 0, msg)
	default:
		s.alarms.AmendStation(s.commonArea(ctx, ids), loa.AlarmBulletinDeadline, loa.SeverityWarning, float64(len(names)), 0, msg)
	}
	s.alarmMsg = msg
	s.late = map[string]bool{}
	for _, n := range names {
		s.late[n] = true
	}
	return nil
}

// commonArea is the deepest area holding every late commune: the alarm's
// area, so province staff scoped to it see it and are told of it.
func (s *Bulletins) commonArea(ctx context.Context, ids []string) string {
	areas, err := s.db.Areas(ctx)
	if err != nil {
		s.logger.Warn("bulletin alarm: reading areas; raised station-wide", "err", err)
		return ""
	}
	return loa.NewAreaTree(areas).Common(ids...)
}

func (s *Bulletins) areaName(ctx context.Context, id string) string {
	if a, err := s.db.Area(ctx, id); err == nil && a.Name != "" {
		return a.Name + " (" + id + ")"
	}
	return id
}

// evidence is what one Check reads of the sessions and receivers.
type evidence struct {
	db        *store.DB
	ctx       context.Context
	tree      loa.AreaTree
	devices   []*loa.Device
	sessions  []*loa.Session
	playlists map[string]*loa.Playlist
}

func (s *Bulletins) loadEvidence(ctx context.Context) (*evidence, error) {
	ev := &evidence{db: s.db, ctx: ctx, playlists: map[string]*loa.Playlist{}}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	ev.tree = loa.NewAreaTree(areas)
	if ev.devices, err = s.db.Devices(ctx); err != nil {
		return nil, err
	}
	if ev.sessions, err = s.db.Sessions(ctx); err != nil {
		return nil, err
	}
	return ev, nil
}

// plays reports whether sess plays media id.
func (ev *evidence) plays(sess *loa.Session, id string) bool {
	if sess.MediaID != "" {
		return sess.MediaID == id
	}
	p, ok := ev.playlists[sess.PlaylistID]
	if !ok {
		p, _ = ev.db.Playlist(ev.ctx, sess.PlaylistID)
		ev.playlists[sess.PlaylistID] = p
	}
	return p != nil && slices.ContainsFunc(p.Items, func(it loa.PlaylistItem) bool { return it.MediaID == id })
}

// aired returns when c's commune first played b and on how many of its
// receivers: the delivery lines, written from the receivers' own events
// (or RTCP), of sessions started since c was accepted that play b's media.
func (ev *evidence) aired(b *loa.Bulletin, c *loa.BulletinCommune) (time.Time, int) {
	mine := map[string]bool{}
	for _, d := range ev.devices {
		if ev.tree.Within(d.AreaID, c.AreaID) {
			mine[d.ID] = true
		}
	}
	var first time.Time
	heard := map[string]bool{}
	for _, sess := range ev.sessions {
		if sess.StartedAt.Before(c.AcceptedAt.Add(-time.Second)) || !ev.plays(sess, b.MediaID) {
			continue
		}
		if !slices.ContainsFunc(sess.Devices, func(d string) bool { return mine[d] }) {
			continue
		}
		lines, err := ev.db.Deliveries(ev.ctx, sess.ID)
		if err != nil {
			continue
		}
		for _, l := range lines {
			played := l.State == loa.DeliveryStarted || l.State == loa.DeliveryFinished || l.Played > 0
			if !mine[l.Device] || !played || l.Evidence == "" && l.Played == 0 {
				continue
			}
			heard[l.Device] = true
			if at := l.StartedAt; !at.IsZero() && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
	}
	if len(heard) > 0 && first.IsZero() {
		first = time.Now().UTC()
	}
	return first, len(heard)
}
