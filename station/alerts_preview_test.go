package station_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/loa-broadcast/loa/media"
)

// TestPreviewAlert: the preview is the text spoken as the alert speaks
// it, Ogg Opus a browser plays: half a second of speech, with the tone
// before it when asked; nothing is sent or stored.
func TestPreviewAlert(t *testing.T) {
	w := newWorld(t, "", newFleet("d1"), "d1")
	ctx := context.Background()
	count := func(ogg []byte) int {
		t.Helper()
		r, err := media.NewPacketReader(bytes.NewReader(ogg))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				return n
			}
			n++
		}
	}
	plain, err := w.alerts.PreviewAlert(ctx, "Bà con sơ tán.", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(plain); n < 24 || n > 27 { // 0.5 s of 20 ms frames
		t.Errorf("the preview has %d frames, want about 25", n)
	}
	toned, err := w.alerts.PreviewAlert(ctx, "Bà con sơ tán.", true)
	if err != nil {
		t.Fatal(err)
	}
	if count(toned) <= count(plain)+50 {
		t.Errorf("with the tone %d frames, without %d", count(toned), count(plain))
	}
	if list, err := w.alerts.Alerts(ctx); err != nil || len(list) != 0 {
		t.Errorf("a preview left alerts: %v, %v", list, err)
	}
}
