package station

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// Fallbacks implements loa.FallbackService: each area's background
// programme is a looping session in the background band, which every other
// session preempts and which its receivers rejoin afterwards. A
// supervisor keeps one running per configured area.
type Fallbacks struct {
	db       *store.DB
	sessions *Sessions
	logger   *slog.Logger
	kick     chan struct{}
}

var _ loa.FallbackService = (*Fallbacks)(nil)

// NewFallbacks returns the fallback service of db starting its sessions
// through sessions; Supervise keeps them running.
func NewFallbacks(db *store.DB, sessions *Sessions, logger *slog.Logger) *Fallbacks {
	return &Fallbacks{db: db, sessions: sessions, logger: logger, kick: make(chan struct{}, 1)}
}

func (f *Fallbacks) SetFallback(ctx context.Context, fb *loa.Fallback) error {
	if fb.Priority == 0 {
		fb.Priority = loa.DefaultFallbackPriority
	}
	if err := f.db.PutFallback(ctx, fb); err != nil {
		return err
	}
	// A changed programme replaces the running one.
	f.stop(ctx, fb.AreaID, "fallback changed")
	f.wake()
	return nil
}

func (f *Fallbacks) ClearFallback(ctx context.Context, areaID string) error {
	if err := f.db.DeleteFallback(ctx, areaID); err != nil {
		return err
	}
	f.stop(ctx, areaID, "fallback cleared")
	return nil
}

func (f *Fallbacks) Fallbacks(ctx context.Context) ([]*loa.Fallback, error) {
	return f.db.Fallbacks(ctx)
}

func (f *Fallbacks) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// running returns the playing fallback session of an area, if any.
func (f *Fallbacks) running(ctx context.Context, areaID string) *loa.Session {
	all, err := f.db.Sessions(ctx)
	if err != nil {
		return nil
	}
	for _, s := range all {
		if s.State == loa.SessionPlaying && s.Origin == (loa.Origin{Kind: loa.OriginFallback, ID: areaID}) {
			return s
		}
	}
	return nil
}

func (f *Fallbacks) stop(ctx context.Context, areaID, reason string) {
	if s := f.running(ctx, areaID); s != nil {
		if err := f.sessions.StopSession(ctx, s.ID, s.Origin.String(), reason); err != nil {
			f.logger.Warn("fallback not stopped", "area", areaID, "err", err)
		}
	}
}

// Supervise starts missing fallback sessions now, whenever woken, and
// every few seconds, until ctx ends.
func (f *Fallbacks) Supervise(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		all, err := f.db.Fallbacks(ctx)
		if err != nil && ctx.Err() == nil {
			f.logger.Error("fallbacks not read", "err", err)
		}
		for _, fb := range all {
			if f.running(ctx, fb.AreaID) != nil {
				continue
			}
			sess := &loa.Session{MediaID: fb.Content.MediaID, PlaylistID: fb.Content.PlaylistID,
				Targets: loa.Targets{Areas: []string{fb.AreaID}}, Priority: fb.Priority,
				MaxDuration: 24 * time.Hour, Origin: loa.Origin{Kind: loa.OriginFallback, ID: fb.AreaID}}
			if err := f.sessions.start(ctx, sess, true); err != nil && ctx.Err() == nil {
				f.logger.Warn("fallback not started", "area", fb.AreaID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
	}
}

// loop repeats a source forever, reopening it at its end: a background
// programme has no end of its own.
type loop struct {
	open func() (source, int, error)
	cur  source
}

func (l *loop) Next() ([]byte, error) {
	for range 2 {
		p, err := l.cur.Next()
		if !errors.Is(err, io.EOF) {
			return p, err
		}
		l.cur.Close()
		if l.cur, _, err = l.open(); err != nil {
			l.cur = emptySource{}
			return nil, err
		}
	}
	return nil, errors.New("fallback: programme is empty")
}

func (l *loop) Close() error { return l.cur.Close() }

type emptySource struct{}

func (emptySource) Next() ([]byte, error) { return nil, io.EOF }
func (emptySource) Close() error          { return nil }
