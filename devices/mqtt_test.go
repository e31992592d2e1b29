package devices

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// waitLimit bounds every wait in these tests so a bug fails the test
// instead of hanging it. Nothing asserts on elapsed time.
const waitLimit = 20 * time.Second

// openFleet opens a Fleet against b and closes it at the end of the test.
func openFleet(t *testing.T, b *loatest.Broker, cfg Config) *Fleet {
	t.Helper()
	cfg.Broker = b.URL()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func answerDone(cmd protocol.Command) []protocol.Ack {
	return []protocol.Ack{{ID: cmd.ID, State: protocol.AckAccepted}, {ID: cmd.ID, State: protocol.AckDone}}
}

// presenceWatch collects OnPresence calls.
type presenceWatch chan loa.DeviceState

func watchPresence(t *testing.T, f *Fleet) presenceWatch {
	w := make(presenceWatch, 1000)
	cancel := f.OnPresence(func(st loa.DeviceState) { w <- st })
	t.Cleanup(cancel)
	return w
}

// wait returns the next presence change of device id matching online.
func (w presenceWatch) wait(t *testing.T, id string, online bool) loa.DeviceState {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case st := <-w:
			if st.ID == id && st.Online == online {
				return st
			}
		case <-timeout:
			t.Fatalf("device %s never became online=%v", id, online)
		}
	}
}

func code(err error) string { return loa.ErrorCode(err) }

func isCtx(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
