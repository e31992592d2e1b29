package broker

import (
	"context"
	"log/slog"
)

// quietLogger is the logger handed to mochi. mochi logs every refused
// connection and hook at Info or Warn, which would drown the controller's own
// log, so below Error its records pass only when log is at Debug.
func quietLogger(log *slog.Logger) *slog.Logger {
	h := log.With("mqtt", "mochi").Handler()
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return slog.New(h)
	}
	return slog.New(minLevel{min: slog.LevelError, h: h})
}

// minLevel drops records below min.
type minLevel struct {
	min slog.Level
	h   slog.Handler
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{min: m.min, h: m.h.WithAttrs(as)}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{min: m.min, h: m.h.WithGroup(name)}
}
