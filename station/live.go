package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Uplinks takes live audio from WebRTC clients (WHIP offers): package
// live, wired in daemon. loss tells the receivers' loss (RTCP fraction
// lost) for the reports to the client.
type Uplinks interface {
	Accept(ctx context.Context, offer string, loss func() uint8) (Uplink, string, error)
}

// Uplink is one client's audio: frames on the controller's timeline
// (forwarded Opus, or loa.ErrGap), until it ends.
type Uplink interface {
	loa.PacketSource
	Trickle(frag string) error // the client's trickled candidates
	Done() <-chan struct{}     // closed when the uplink ends
	Reason() string            // why it ended
	Transcoded() bool          // its Opus had to be decoded and encoded again
	Close() error
}

// Why a live session ends, in its play log line.
const (
	LiveEndedBySpeaker = "ended by the speaker"
	LiveUplinkLost     = "ended: uplink lost"
)

// Live runs live microphone sessions: a WHIP client's uplink, forwarded to
// its targets as a session like any other (priority, preemption, play
// log), optionally recorded to the media library.
type Live struct {
	sessions *Sessions
	uplinks  Uplinks
	db       *store.DB
	logger   *slog.Logger
	// Loss is the loss a session's receivers report (broadcast's
	// Engine.ReceiverLoss); nil: none.
	Loss func(sessionID string) uint8

	mu  sync.Mutex
	run map[string]*liveRun // by session id
}

var _ loa.LiveService = (*Live)(nil)

// NewLive returns the live service over the session service and uplinks.
func NewLive(db *store.DB, sessions *Sessions, uplinks Uplinks, logger *slog.Logger) *Live {
	return &Live{sessions: sessions, uplinks: uplinks, db: db, logger: logger, run: map[string]*liveRun{}}
}

type liveRun struct {
	up   Uplink
	sess *loa.Session
}

// StartLive answers a WHIP offer and puts the uplink on air: it returns the
// session and the SDP answer. The session ends when the client ends it
// (EndLive), its uplink is lost, it is stopped like any session, or its
// maximum duration passes.
func (l *Live) StartLive(ctx context.Context, req loa.LiveRequest) (*loa.Session, string, error) {
	sess := &loa.Session{Targets: req.Targets, Priority: req.Priority, MaxDuration: req.MaxDuration,
		Origin: loa.Origin{Kind: loa.OriginLive}, CreatedBy: req.CreatedBy}
	if err := sess.ValidateStream(); err != nil {
		return nil, "", err
	}
	if l.uplinks == nil {
		return nil, "", loa.Errorf(loa.EUNAVAILABLE, "live: WebRTC is not enabled on this controller")
	}
	var (
		idMu sync.Mutex
		id   string
	)
	loss := func() uint8 {
		idMu.Lock()
		sid := id
		idMu.Unlock()
		if sid == "" || l.Loss == nil {
			return 0
		}
		return l.Loss(sid)
	}
	up, answer, err := l.uplinks.Accept(ctx, req.Offer, loss)
	if err != nil {
		return nil, "", err
	}
	src := &liveSource{up: up, l: l, by: req.CreatedBy}
	if req.Record {
		if src.rec, err = l.newRecording(); err != nil {
			up.Close()
			return nil, "", err
		}
	}
	if err := l.sessions.StartWith(ctx, sess, src, 0); err != nil {
		src.abort()
		return nil, "", err
	}
	idMu.Lock()
	id = sess.ID
	idMu.Unlock()
	r := &liveRun{up: up, sess: sess}
	if src.started(sess.ID) { // else it ended already: nothing to follow
		l.mu.Lock()
		l.run[sess.ID] = r
		l.mu.Unlock()
		go l.watch(r)
	}
	return sess, answer, nil
}

// TrickleLive adds a client's candidates to its uplink.
func (l *Live) TrickleLive(ctx context.Context, sessionID, frag string) error {
	r, err := l.running(sessionID)
	if err != nil {
		return err
	}
	return r.up.Trickle(frag)
}

// EndLive ends a live session at its client's request (WHIP DELETE); by
// is who asked.
func (l *Live) EndLive(ctx context.Context, sessionID, by string) error {
	if _, err := l.running(sessionID); err != nil {
		return err
	}
	err := l.sessions.StopSession(ctx, sessionID, by, LiveEndedBySpeaker)
	if loa.ErrorCode(err) == loa.ECONFLICT {
		return nil // it ended meanwhile
	}
	return err
}

func (l *Live) running(id string) (*liveRun, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.run[id]
	if r == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "no live session %q is on air", id)
	}
	return r, nil
}

// watch ends the session when its uplink ends by itself, and marks it
// transcoded as soon as it is.
func (l *Live) watch(r *liveRun) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	marked := false
	for {
		select {
		case <-r.up.Done():
			l.mu.Lock()
			_, mine := l.run[r.sess.ID]
			l.mu.Unlock()
			if !mine {
				return // the session ended first and closed its uplink
			}
			l.logger.Info("live uplink ended", "session", r.sess.ID, "reason", r.up.Reason())
			err := l.sessions.StopSession(context.Background(), r.sess.ID, "", LiveUplinkLost)
			if err != nil && loa.ErrorCode(err) != loa.ECONFLICT {
				l.logger.Error("live session not stopped", "session", r.sess.ID, "err", err)
			}
			return
		case <-t.C:
			if !marked && r.up.Transcoded() {
				marked = true
				l.markTranscoded(r.sess.ID)
			}
		}
	}
}

func (l *Live) markTranscoded(id string) {
	ctx := context.Background()
	sess, err := l.db.Session(ctx, id)
	if err != nil || sess.State != loa.SessionPlaying || sess.Transcoded {
		return
	}
	sess.Transcoded = true
	if err := l.db.PutSession(ctx, sess); err != nil {
		l.logger.Warn("live session not marked transcoded", "session", id, "err", err)
	}
	l.logger.Warn("live uplink transcoded: its Opus could not be forwarded as it is", "session", id)
}

// liveSource is a live session's content: the uplink's frames, recorded
// if asked. Its Close (the session ended) closes the uplink and files the
// recording.
type liveSource struct {
	l   *Live
	up  Uplink
	by  string
	rec *recording

	mu     sync.Mutex
	id     string // set once StartWith returned
	closed bool
}

// started records the session's id; false if it ended already.
func (s *liveSource) started(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = id
	return !s.closed
}

func (s *liveSource) Next() ([]byte, error) {
	p, err := s.up.Next()
	if s.rec != nil && (err == nil || errors.Is(err, loa.ErrGap)) {
		s.rec.add(p, err != nil)
	}
	return p, err
}

func (s *liveSource) Close() error {
	s.mu.Lock()
	s.closed = true
	sid := s.id
	s.mu.Unlock()
	s.l.mu.Lock()
	delete(s.l.run, sid)
	s.l.mu.Unlock()
	s.up.Close()
	if sid == "" { // it ended as it started (the engine refused it)
		if s.rec != nil {
			s.rec.w.Abort()
		}
		return nil
	}
	if s.rec == nil {
		if s.up.Transcoded() {
			s.l.update(sid, "", true)
		}
		return nil
	}
	m, err := s.rec.file(s.l, s.by)
	if err != nil {
		s.l.logger.Error("live recording not kept", "session", sid, "err", err)
	}
	id := ""
	if m != nil {
		id = m.ID
		s.l.logger.Info("live session recorded", "session", sid, "media", m.ID, "duration", m.Duration)
	}
	s.l.update(sid, id, s.up.Transcoded())
	return nil
}

// abort drops an uplink and recording that never went on air.
func (s *liveSource) abort() {
	s.up.Close()
	if s.rec != nil {
		s.rec.w.Abort()
	}
}

// update records a session's recording and transcoding, before its end
// is written (Close runs first), so the play log's end line links it.
func (l *Live) update(id, recording string, transcoded bool) {
	ctx := context.Background()
	sess, err := l.db.Session(ctx, id)
	if err != nil {
		return
	}
	sess.RecordingID, sess.Transcoded = recording, sess.Transcoded || transcoded
	if err := l.db.PutSession(ctx, sess); err != nil {
		l.logger.Warn("live session not updated", "session", id, "err", err)
	}
}

// recording writes the frames that aired as Ogg Opus, as they were sent:
// nothing is encoded again.
type recording struct {
	w      *store.BlobWriter
	ogg    *media.OggWriter
	frames int
	err    error
}

// gapPacket stands for a frame that had no packet: a TOC byte alone (CELT
// 20 ms, no data), which decoders conceal, so the recording keeps time.
var gapPacket = []byte{31 << 3}

// preSkip is the usual encoder lookahead at 48 kHz (libopus, browsers).
const preSkip = 312

func (l *Live) newRecording() (*recording, error) {
	w, err := l.db.NewBlob(store.MediaBlob)
	if err != nil {
		return nil, fmt.Errorf("live recording: %w", err)
	}
	return &recording{w: w, ogg: media.NewOggWriter(w, preSkip)}, nil
}

// add writes one frame; the gaps before the first packet are not
// recorded.
func (r *recording) add(p []byte, gap bool) {
	if r.err != nil || (gap && r.frames == 0) {
		return
	}
	if gap {
		p = gapPacket
	}
	r.err = r.ogg.WritePacket(p, protocol.FrameSamples)
	r.frames++
}

// file adds the recording to the media library (nothing if nothing
// aired), as by the speaker.
func (r *recording) file(l *Live, by string) (*loa.Media, error) {
	if r.frames == 0 || r.err != nil {
		r.w.Abort()
		return nil, r.err
	}
	if err := r.ogg.Close(); err != nil {
		r.w.Abort()
		return nil, err
	}
	hash, size, err := r.w.Commit()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if m, err := l.db.MediaByHash(ctx, hash); err == nil {
		return m, nil
	}
	d := time.Duration(r.frames) * protocol.FrameDuration
	m := &loa.Media{ID: hash[:16], Name: "Trực tiếp " + time.Now().Add(-d).Format("2006-01-02 15:04:05"), Hash: hash, Size: size,
		Duration: d, Frames: r.frames, Source: "live", CreatedAt: time.Now(), CreatedBy: by}
	if err := l.db.PutMedia(ctx, m); err != nil {
		l.db.RemoveBlob(store.MediaBlob, hash)
		return nil, err
	}
	return m, nil
}
