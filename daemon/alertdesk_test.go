package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa/loatest/browser"
)

// The alert desk in headless Chromium at phone width, against a whole
// controller with simulated receivers: a province user sends a spoken
// alert to one commune and watches the live report reach "played" on
// both its receivers; a long alert is cancelled from the page and its
// receivers are listed as failed, cancelled.
func TestAlertDeskInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	s := startCAPSystem(t)
	var tok struct{ Secret string }
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/tokens", map[string]string{"name": "tinh", "role": "province", "area_id": "qn"}, &tok); err != nil {
		t.Fatal(err)
	}

	ctx := browser.Start(t, 412, 900) // a phone
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs { // confirm() before sending and cancelling
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			msg, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("msg")))
			t.Fatalf("%s: %v (page says %q)", name, err, msg)
		}
	}
	until := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](js))
			return err
		})
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	step("sign in as the province",
		chromedp.Navigate(s.m.URL()+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), tok.Secret),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.ID("alert-desk")),
		until(`document.querySelector('#alert-areas input[value="bc"]') !== null`))

	step("send a spoken alert to Bình Châu",
		chromedp.SendKeys(chromedp.ID("alert-title"), "Cảnh báo lũ quét"),
		chromedp.SendKeys(chromedp.ID("alert-text"), "Bà con sơ tán ngay."),
		chromedp.Click(chromedp.CSS(`#alert-areas input[value="bc"]`)),
		chromedp.SetValue(chromedp.ID("alert-repeats"), "1"),
		chromedp.SetValue(chromedp.ID("alert-gap"), "0"),
		chromedp.Click(chromedp.CSS(`#alert-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("alert-report")),
		until(`document.querySelector("#alert-report-all").textContent.includes("Tổng 2 thiết bị")`))
	// The page fetched the report once; what follows arrives over the
	// event stream.
	step("the live report shows both receivers played it",
		until(`document.querySelector("#alert-report-all").textContent.includes("2 đã phát xong")`),
		until(`document.querySelector("#alert-report-state").textContent.includes("đã xong")`))
	if areas := text("#alert-areas-body"); !strings.Contains(areas, "Xã Bình Châu") || strings.Contains(areas, "Tịnh Kỳ") {
		t.Errorf("per-area totals: %q", areas)
	}
	if failed := text("#alert-failed-body"); !strings.Contains(failed, "Không có thiết bị lỗi") {
		t.Errorf("failed receivers of a delivered alert: %q", failed)
	}

	step("send a long alert and cancel it from the page",
		chromedp.SetValue(chromedp.ID("alert-title"), "Cảnh báo dài"),
		chromedp.SetValue(chromedp.ID("alert-repeats"), "10"),
		chromedp.SetValue(chromedp.ID("alert-gap"), "60"),
		chromedp.Click(chromedp.CSS(`#alert-form button[type=submit]`)),
		until(`document.querySelector("#alert-report-title").textContent.includes("Cảnh báo dài")`),
		until(`document.querySelector("#alert-report-all").textContent.includes("2 đang phát")`),
		chromedp.Click(chromedp.ID("alert-cancel")),
		until(`document.querySelector("#alert-report-state").textContent.includes("đã hủy")`),
		until(`document.querySelectorAll("#alert-failed-body tr td.emergency").length === 2`))
	if failed := text("#alert-failed-body"); !strings.Contains(failed, "bc-1") || !strings.Contains(failed, "bc-2") || !strings.Contains(failed, "đã hủy") {
		t.Errorf("failed receivers of a cancelled alert: %q", failed)
	}
	if recent := text("#alerts-body"); !strings.Contains(recent, "Cảnh báo dài") || !strings.Contains(recent, "Cảnh báo lũ quét") {
		t.Errorf("recent alerts: %q", recent)
	}
}
