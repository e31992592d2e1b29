package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa/loatest/browser"
)

// TestOperatorPageInChromium drives the web UI in headless Chromium: sign
// in, see the commune's devices, upload, play, stop. Outside CI it is
// skipped when no Chromium is installed, or with -short.
func TestOperatorPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	e := newEnv(t)
	e.withMedia()

	ctx := browser.Start(t, 412, 900) // a phone
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs { // confirm() before stopping and before emergencies
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	audio := filepath.Join(t.TempDir(), "bản tin.wav")
	if err := os.WriteFile(audio, []byte("RIFF....WAVEfmt "), 0o600); err != nil {
		t.Fatal(err)
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	until := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](js))
			return err
		})
	}

	script := func(js string) chromedp.Action[chromedp.Void] { // runs js, which must return a boolean
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			return err
		})
	}

	step("sign in",
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.opA),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.ID("app")),
		until(`document.querySelector("#devices-body").textContent.includes("dev-a1")`))
	devices := text("#devices-body")

	// Alarms arrive live over the event stream, per area; the device
	// list filters on them.
	e.alarms.raise("al-hot", "dev-a1", "a-1", "temperature")
	step("alarm raised",
		until(`document.querySelector("#alarms-body").textContent.includes("Quá nhiệt")`),
		chromedp.SetValue(chromedp.ID("devices-problem"), "temperature"),
		script(`document.querySelector("#devices-problem").dispatchEvent(new Event("change"))`),
		until(`document.querySelector("#devices-body").textContent.includes("Quá nhiệt")`))
	alarms := text("#alarms-body")
	e.alarms.clear("al-hot")
	step("alarm cleared",
		until(`document.querySelector("#alarms-body").textContent.includes("Không có sự cố")`),
		chromedp.SetValue(chromedp.ID("devices-problem"), "any"),
		script(`document.querySelector("#devices-problem").dispatchEvent(new Event("change"))`),
		until(`document.querySelector("#devices-body").textContent.includes("Không có thiết bị nào")`))

	step("upload",
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{audio}),
		chromedp.Click(chromedp.CSS("#upload-form button")),
		until(`document.querySelector("#media-body").textContent.includes("bản tin.wav")`))

	step("play",
		chromedp.SetValue(chromedp.ID("play-area"), "a-1"),
		chromedp.Click(chromedp.CSS("#play-form button")),
		until(`document.querySelector("#sessions-body button.stop") !== null`))
	sessions := text("#sessions-body")

	step("stop",
		chromedp.Click(chromedp.CSS("#sessions-body button.stop")),
		until(`document.querySelector("#sessions-body button.stop") === null`))
	msg := text("#msg")

	if !strings.Contains(devices, "dev-a1") || strings.Contains(devices, "dev-b1") {
		t.Errorf("devices table shows %q; want dev-a1 and not dev-b1", devices)
	}
	if !strings.Contains(devices, "-71 dBm") || !strings.Contains(devices, "1.0 %") {
		t.Errorf("devices table lacks signal or loss: %q", devices)
	}
	if !strings.Contains(alarms, "Cụm 1") || !strings.Contains(alarms, "dev-a1") {
		t.Errorf("alarm panel %q: want the area's name and the device", alarms)
	}
	if !strings.Contains(sessions, "đang phát") || !strings.Contains(sessions, "Thông thường") {
		t.Errorf("sessions table %q", sessions)
	}
	if !strings.Contains(msg, "Đã dừng") {
		t.Errorf("message after stop %q", msg)
	}
	if e.sessions.count() != 1 {
		t.Errorf("the page started %d sessions, want 1", e.sessions.count())
	}
	if e.media.count() != 2 {
		t.Errorf("media count %d after the page's upload, want 2", e.media.count())
	}
}
