package station

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/store"
)

// Relays keeps relays of external streams and plays them: each playing
// relay is a session whose packets a media.Relay produces (ffmpeg
// children, loudness, Opus once, failover). Every switch of source is in
// the play log; a failover that lasts raises relay_failover.
type Relays struct {
	db       *store.DB
	sessions *Sessions
	logger   *slog.Logger

	// FFmpeg is the ffmpeg binary; empty: "ffmpeg" on the PATH.
	FFmpeg string
	// Bitrate is the station's Opus bitrate; 0: media.DefaultBitrate.
	Bitrate int
	// Alarms raises relay_failover while a relay plays other than its
	// primary URL for longer than AlarmAfter (zero: 30 s); nil: none.
	Alarms     StationAlarms
	AlarmAfter time.Duration
	// Tune, for tests, adjusts each relay's options (thresholds).
	Tune func(*media.RelayOptions)

	mu      sync.Mutex
	playing map[string]*playingRelay // by session id
}

type playingRelay struct {
	relay   *loa.Relay
	session string
	src     *media.Relay
	alarm   *time.Timer
	early   []string // switches before the session had an id
}

var _ loa.RelayService = (*Relays)(nil)

// NewRelays returns the relay service of db, playing through sessions.
func NewRelays(db *store.DB, sessions *Sessions, logger *slog.Logger) *Relays {
	return &Relays{db: db, sessions: sessions, logger: logger, playing: map[string]*playingRelay{}}
}

func (s *Relays) CreateRelay(ctx context.Context, r *loa.Relay) error {
	return s.db.PutRelay(ctx, r, true)
}

func (s *Relays) UpdateRelay(ctx context.Context, r *loa.Relay) error {
	return s.db.PutRelay(ctx, r, false)
}

func (s *Relays) DeleteRelay(ctx context.Context, id string) error {
	s.mu.Lock()
	for _, p := range s.playing {
		if p.relay.ID == id {
			s.mu.Unlock()
			return loa.Errorf(loa.ECONFLICT, "relay %q is playing (session %s): stop it first", id, p.session)
		}
	}
	s.mu.Unlock()
	return s.db.DeleteRelay(ctx, id)
}

func (s *Relays) Relay(ctx context.Context, id string) (*loa.Relay, error) {
	return s.db.Relay(ctx, id)
}

func (s *Relays) Relays(ctx context.Context) ([]*loa.Relay, error) { return s.db.Relays(ctx) }

// PlayRelay starts sess relaying relay id. sess names its targets and
// priority; its maximum duration is the relay's own when it has one (a
// scheduled relay's otherwise is its schedule's end), else the caller's,
// else loa.DefaultStreamMaxDuration.
func (s *Relays) PlayRelay(ctx context.Context, id string, sess *loa.Session) error {
	return s.play(ctx, id, sess, false)
}

// relayRestartMin: a relay with less than this left is not started again
// after a restart.
const relayRestartMin = 10 * time.Second

// Restart starts again a relay that stopped with the controller
// (Sessions.Restarted): its source was an ffmpeg child, gone with the
// process (or with a failed-over leader). It plays on as a new session with
// the same targets, priority and origin until the end the stopped one had;
// a stream has no position, so what aired in the gap is not replayed.
func (s *Relays) Restart(ctx context.Context, stopped *loa.Session) {
	if stopped.RelayID == "" || stopped.MaxDuration <= 0 {
		return
	}
	left := time.Until(stopped.StartedAt.Add(stopped.MaxDuration))
	if left < relayRestartMin {
		return
	}
	sess := &loa.Session{Targets: stopped.Targets, Priority: stopped.Priority, Origin: stopped.Origin,
		ScheduledAt: stopped.ScheduledAt, CreatedBy: stopped.CreatedBy, MaxDuration: left.Round(time.Second)}
	if err := s.play(ctx, stopped.RelayID, sess, true); err != nil {
		s.logger.Error("relay not started again after a restart", "relay", stopped.RelayID, "session", stopped.ID, "err", err)
		return
	}
	s.logger.Info("relay started again after a restart", "relay", stopped.RelayID, "stopped", stopped.ID, "session", sess.ID, "left", sess.MaxDuration)
}

// play starts sess relaying id; keep: sess.MaxDuration stands (a restart).
func (s *Relays) play(ctx context.Context, id string, sess *loa.Session, keep bool) error {
	r, err := s.db.Relay(ctx, id)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return loa.Errorf(loa.ENOTFOUND, "relay_id: no relay %q", id)
	} else if err != nil {
		return err
	}
	if err := sess.ValidateStream(); err != nil {
		return err // before any ffmpeg starts
	}
	if r.DurationS > 0 && !keep && (sess.MaxDuration == 0 || sess.Origin.Kind == loa.OriginSchedule) {
		sess.MaxDuration = time.Duration(r.DurationS) * time.Second
	}
	if sess.Origin.Kind == "" {
		sess.Origin = loa.Origin{Kind: loa.OriginRelay, ID: r.ID}
	}
	sess.RelayID = r.ID
	p := &playingRelay{relay: r}
	opt := media.RelayOptions{
		URLs: r.URLs, SilenceDB: r.SilenceDB, SilenceFor: time.Duration(r.SilenceS) * time.Second,
		Bitrate: s.Bitrate, FFmpeg: s.FFmpeg, Logger: s.logger.With("relay", r.ID),
		OnSwitch: func(sw media.RelaySwitch) { s.switched(p, sw) },
	}
	if r.FallbackMediaID != "" {
		opt.Fallback = s.fallback(r.FallbackMediaID)
	}
	if s.Tune != nil {
		s.Tune(&opt)
	}
	src, err := media.StartRelay(opt)
	if err != nil {
		return err
	}
	p.src = src
	if err := s.sessions.StartWith(ctx, sess, &relaySource{Relay: src, done: func() { s.ended(p) }}, 0); err != nil {
		src.Close()
		return err
	}
	s.mu.Lock()
	p.session = sess.ID
	s.playing[sess.ID] = p
	early := p.early
	p.early = nil
	s.mu.Unlock()
	for _, d := range early {
		s.logSwitch(sess.ID, d)
	}
	return nil
}

// logSwitch writes a relay_switch line of the session.
func (s *Relays) logSwitch(sessID, detail string) {
	ctx := context.Background()
	if sess, err := s.db.Session(ctx, sessID); err == nil {
		s.sessions.appendLog(ctx, logEntry(sess, loa.PlayRelaySwitch, nil, detail))
	}
}

// relaySource is a playing relay as its session holds it: closing it (the
// session ended) stops ffmpeg and forgets the relay.
type relaySource struct {
	*media.Relay
	done func()
}

func (r *relaySource) Close() error {
	err := r.Relay.Close()
	r.done()
	return err
}

func (s *Relays) ended(p *playingRelay) {
	s.mu.Lock()
	delete(s.playing, p.session)
	alarm := p.alarm
	p.alarm = nil
	s.mu.Unlock()
	if alarm != nil {
		alarm.Stop()
		s.clearAlarm(p, "the relay ended")
	}
}

// fallback opens the fallback media item's packets.
func (s *Relays) fallback(mediaID string) func() (loa.PacketSource, io.Closer, error) {
	return func() (loa.PacketSource, io.Closer, error) {
		m, err := s.db.Media(context.Background(), mediaID)
		if err != nil {
			return nil, nil, err
		}
		f, err := s.db.OpenBlob(store.MediaBlob, m.Hash)
		if err != nil {
			return nil, nil, err
		}
		pr, err := media.NewPacketReader(f)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return pr, f, nil
	}
}

// switched logs a switch of source and keeps the alarm.
func (s *Relays) switched(p *playingRelay, sw media.RelaySwitch) {
	name := func(i int, u string) string {
		if i == media.RelayFallback {
			if p.relay.FallbackMediaID != "" {
				return "the fallback media " + p.relay.FallbackMediaID
			}
			return "silence (no fallback media)"
		}
		if i == 0 {
			return "the primary URL " + u
		}
		return fmt.Sprintf("backup URL %d %s", i, u)
	}
	detail := fmt.Sprintf("relay %s: %s → %s", p.relay.ID, name(sw.From, sw.FromURL), name(sw.To, sw.ToURL))
	if sw.Reason == "returned" {
		detail += " (the primary sounds again)"
	} else {
		detail += fmt.Sprintf(" (%s)", sw.Reason)
	}
	s.mu.Lock()
	sessID := p.session
	if sessID == "" { // a switch while the session starts: logged once it has an id
		p.early = append(p.early, detail)
	}
	s.mu.Unlock()
	if sessID != "" {
		s.logSwitch(sessID, detail)
	}
	s.logger.Info("relay switched", "relay", p.relay.ID, "session", sessID, "detail", detail)

	s.mu.Lock()
	defer s.mu.Unlock()
	if sw.To == 0 {
		if p.alarm != nil {
			p.alarm.Stop()
			p.alarm = nil
			go s.clearAlarm(p, "the primary URL plays again")
		}
		return
	}
	if p.alarm == nil && s.Alarms != nil {
		after := s.AlarmAfter
		if after <= 0 {
			after = 30 * time.Second
		}
		p.alarm = time.AfterFunc(after, func() {
			s.Alarms.RaiseStation(loa.AlarmRelayFailover, loa.SeverityWarning, after.Seconds(), after.Seconds(),
				fmt.Sprintf("relay %s (%s) has not played its primary URL for over %v: %s", p.relay.ID, p.relay.Name, after, detail))
		})
	}
}

func (s *Relays) clearAlarm(p *playingRelay, why string) {
	if s.Alarms != nil {
		s.Alarms.ClearStation(loa.AlarmRelayFailover, why)
	}
}

// RelayStates tells what each playing relay plays, by relay id.
func (s *Relays) RelayStates() []loa.RelayState {
	s.mu.Lock()
	list := make([]*playingRelay, 0, len(s.playing))
	for _, p := range s.playing {
		list = append(list, p)
	}
	s.mu.Unlock()
	out := make([]loa.RelayState, 0, len(list))
	for _, p := range list {
		st := p.src.State()
		out = append(out, loa.RelayState{RelayID: p.relay.ID, SessionID: p.session, URL: st.URL, Fallback: st.Current == media.RelayFallback,
			Source: st.Codec, KbitS: st.KbitS, LevelDB: st.LevelDB, Failovers: st.Failovers, Since: st.Since})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].RelayID < out[j].RelayID || out[i].RelayID == out[j].RelayID && out[i].SessionID < out[j].SessionID
	})
	return out
}
