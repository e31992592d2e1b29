package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestQuietLogger(t *testing.T) {
	var buf bytes.Buffer
	info := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	q := quietLogger(info).With("listener", "tcp")
	q.Info("mochi info")
	q.Warn("mochi warn")
	q.Error("mochi error")
	out := buf.String()
	if strings.Contains(out, "mochi info") || strings.Contains(out, "mochi warn") {
		t.Errorf("mochi chatter reached an Info logger:\n%s", out)
	}
	if !strings.Contains(out, "mochi error") || !strings.Contains(out, "listener=tcp") {
		t.Errorf("mochi error missing:\n%s", out)
	}

	buf.Reset()
	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	quietLogger(debug).Debug("mochi debug")
	if !strings.Contains(buf.String(), "mochi debug") {
		t.Errorf("a Debug logger should see all of mochi:\n%s", buf.String())
	}
}
