package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest/browser"
)

// regexpDate is how the console shows a time: dd/MM/yyyy HH:mm.
var regexpDate = regexp.MustCompile(`\b\d{2}/\d{2}/\d{4} \d{2}:\d{2}\b`)

// axeVersion is the vendored axe-core (web/vendor/axe-core).
const axeVersion = "4.14.1"

// TestConsole drives the console in headless Chromium against one whole
// controller with simulated receivers, as the province and as a commune
// operator, through clicks and typing: sign in, the overview following a
// session live, play now and stop, upload, receivers, the alert desk,
// the broadcast log, errors next to their field, the language switch.
// Every screen is checked at 1400 and 375 px (no sideways scroll),
// screenshotted into the artefact directory and run through axe-core
// with zero serious or critical violations.
//
// People sign in as users (made through the users API with the admin
// token) by typing into the sign-in form: a cookie session, whose
// changes must carry X-CSRF-Token.
func TestConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	s := startCAPSystem(t)
	bg := context.Background()
	token := func(name, role, area string) string {
		var tok struct{ Secret string }
		if err := s.api.JSON(bg, "POST", "/api/v1/tokens", map[string]string{"name": name, "role": role, "area_id": area}, &tok); err != nil {
			t.Fatal(err)
		}
		return tok.Secret
	}
	user := func(username, name, role, area string) string {
		req := map[string]string{"username": username, "name": name, "role": role, "area_id": area, "password": consolePassword}
		if err := s.api.JSON(bg, "POST", "/api/v1/users", req, nil); err != nil {
			t.Fatal(err)
		}
		return username
	}
	province, operator := user("so-tttt", "Sở TT&TT", "province", "qn"), user("cb-binhchau", "Cán bộ Bình Châu", "operator", "bc")
	technician := user("kt-tinh", "Kỹ thuật tỉnh", "technician", "qn")
	provinceToken := token("Sở TT&TT (máy)", "province", "qn")
	admin := user("quan-tri", "Quản trị trạm", "admin", "")
	news, err := s.api.UploadMedia(bg, "Bản tin sáng", sineWAV(time.Minute)) // outlasts each test's stop
	if err != nil {
		t.Fatal(err)
	}
	// A programme in three hours, for the overview's next programmes.
	next := time.Now().Add(3 * time.Hour).Truncate(time.Minute)
	sched := map[string]any{"id": "sang", "name": "Chương trình sáng", "enabled": true, "priority": 64,
		"rule":    map[string]any{"kind": "once", "date": next.UTC().Format(time.DateOnly), "time": next.UTC().Format("15:04:05"), "zone": "UTC"},
		"content": map[string]string{"media_id": news.ID}, "targets": map[string][]string{"areas": {"bc"}}}
	if err := s.api.JSON(bg, "POST", "/api/v1/schedules", sched, nil); err != nil {
		t.Fatal(err)
	}
	axe, err := os.ReadFile(filepath.Join("..", "web", "vendor", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(axe[:200]), "axe v"+axeVersion) {
		t.Fatalf("web/vendor/axe-core/axe.min.js is not axe-core %s", axeVersion)
	}
	art := artefactDir(t)
	audio := filepath.Join(t.TempDir(), "thông báo.wav")
	if err := os.WriteFile(audio, sineWAV(time.Second), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := browser.Start(t, 1400, 900)
	// Past ctx's deadline too: each job has a deadline of its own (with).
	dctx := context.WithoutCancel(ctx)
	dialogs := chromedp.Events(dctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs { // confirm() before stopping, sending, cancelling
			if err != nil {
				return
			}
			chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	c := &console{t: t, ctx: ctx, axe: string(axe), art: art, url: s.m.URL(), glossaryGap: glossaryGap(t)}
	f := &consoleFixture{s: s, c: c, token: token, user: user, province: province, operator: operator,
		technician: technician, admin: admin, provinceToken: provinceToken, news: news, audio: audio}

	c.step("a wrong token is refused in words, next to the form",
		chromedp.Navigate(c.url+"/#/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.Click(chromedp.CSS("details.card summary")),
		chromedp.SendKeys(chromedp.ID("token"), "sai-ma"),
		chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
		c.until(`!document.querySelector("#token-form-error").hidden && document.querySelector("#token-form-error").textContent.includes("Mã truy cập không đúng")`))
	c.step("a wrong password is refused in words, without saying which of the two was wrong",
		chromedp.SendKeys(chromedp.ID("login-user"), province),
		chromedp.SendKeys(chromedp.ID("login-pass"), "sai-mat-khau-roi"),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		c.until(`!document.querySelector("#login-error").hidden && document.querySelector("#login-error").textContent.includes("Sai tên đăng nhập hoặc mật khẩu")`),
		c.until(`document.querySelector("#login-pass").value === "" && document.querySelector("#nav").hidden`))
	// The back-off's wait in words (its 429 itself is the auth tests').
	if got := c.evalAwait(`import("./js/i18n.js").then((m) => m.errorText({code: "login_backoff", retryAfter: 90}))`); got != "Đăng nhập sai quá nhiều lần. Hãy thử lại sau 1 phút 30 giây." {
		t.Errorf("login back-off message: %q", got)
	}
	c.signInAs("province", province)
	c.step("the overview counts the province's receivers",
		c.until(`document.querySelector("#count-total").textContent === "6" && document.querySelector("#count-online").textContent === "6"`),
		c.until(`document.querySelector("#nav a[href='#/alerts']") !== null`))
	c.eval(`window.loaNoReload = true`)
	// Times show as dd/MM/yyyy HH:mm in the station's zone.
	vn, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	c.step("the next programme, in the station's time",
		c.until(`document.querySelector("#next-programmes").textContent.includes(`+strconv.Quote(next.In(vn).Format("02/01/2006 15:04")+" · Bản tin sáng")+`)`))

	t.Run("OverviewLive", func(t *testing.T) {
		c := c.with(t)
		// A session started elsewhere appears without a reload, and
		// leaves when stopped from the overview.
		sess, err := api.NewClient(s.m.URL(), provinceToken).StartSession(bg, api.SessionRequest{MediaID: news.ID, Targets: loa.Targets{Areas: []string{"bc"}}, MaxDuration: "5m"})
		if err != nil {
			t.Fatal(err)
		}
		c.step("the session appears via the event stream",
			c.until(`document.querySelector("#now-playing").textContent.includes("Bản tin sáng")`),
			c.until(`document.querySelector("#now-playing").textContent.includes("Xã Bình Châu")`))
		if !c.evalBool(`window.loaNoReload === true`) {
			t.Error("the page was reloaded")
		}
		c.check("overview")
		c.step("stop it from the overview",
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#now-playing li[data-id=%q] button.stop`, sess.ID))),
			c.until(`document.querySelector("#now-playing li[data-id]") === null`),
			c.until(`document.querySelector("#now-playing").textContent.includes("Không có chương trình nào đang phát")`))
		if got, err := s.api.Session(bg, sess.ID); err != nil || got.State != loa.SessionStopped {
			t.Errorf("after the overview's stop the session is %+v, %v; want stopped", got, err)
		}

		// An amplifier fails and is repaired; a receiver loses power.
		if err := s.rx["sh-1"].SetAmpFault(true); err != nil {
			t.Fatal(err)
		}
		c.step("the alarm appears",
			c.until(`document.querySelector("#open-alarms").textContent.includes("Lỗi bộ khuếch đại — sh-1")`),
			c.until(`document.querySelector("#open-alarms").textContent.includes("Thị trấn Di Lăng")`))
		c.check("overview-alarm")
		if err := s.rx["sh-1"].SetAmpFault(false); err != nil {
			t.Fatal(err)
		}
		c.step("and goes when cleared",
			c.until(`document.querySelector("#open-alarms li[data-id]") === null`))
		s.rx["tk-1"].Kill()
		c.step("the counts follow a receiver going offline",
			c.until(`document.querySelector("#count-offline").textContent === "1" && document.querySelector("#count-online").textContent === "5"`))
		if !c.evalBool(`window.loaNoReload === true`) {
			t.Error("the page was reloaded")
		}
	})

	t.Run("CookieChangesCarryCSRF", func(t *testing.T) {
		c := c.with(t)
		c.go_("overview")
		sess, err := api.NewClient(s.m.URL(), provinceToken).StartSession(bg, api.SessionRequest{MediaID: news.ID, Targets: loa.Targets{Areas: []string{"tk"}}, MaxDuration: "5m"})
		if err != nil {
			t.Fatal(err)
		}
		// The cookie alone does not make a change: the API asks for the
		// session's CSRF token, which only the console's own page has.
		bare := c.evalAwait(fmt.Sprintf(`fetch("/api/v1/sessions/%s/stop", {method: "POST"}).then(async (r) => r.status + " " + (await r.json()).code)`, sess.ID))
		if bare != "403 csrf" {
			t.Errorf("a cookie change without X-CSRF-Token: %q, want 403 csrf", bare)
		}
		// Another tab signs in again: the cookie is a new session's, and
		// this tab's CSRF token is stale; the console takes the new one.
		relogin := c.evalAwait(fmt.Sprintf(`fetch("/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: %q, password: %q})}).then((r) => String(r.status))`, province, consolePassword))
		if relogin != "200" {
			t.Fatalf("signing in again from the page: %s", relogin)
		}
		c.step("stop it from the overview",
			c.until(fmt.Sprintf(`document.querySelector(%q) !== null`, fmt.Sprintf(`#now-playing li[data-id=%q] button.stop`, sess.ID))),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#now-playing li[data-id=%q] button.stop`, sess.ID))),
			c.until(`document.querySelector("#now-playing li[data-id]") === null`))
		got, err := s.api.Session(bg, sess.ID)
		if err != nil || got.State != loa.SessionStopped || got.StoppedBy != loa.UserActorPrefix+province {
			t.Errorf("after the console's stop the session is %+v, %v; want stopped by %s", got, err, loa.UserActorPrefix+province)
		}
	})

	t.Run("SignInSurvivesReloadNotSignOut", func(t *testing.T) {
		c := c.with(t)
		c.go_("overview")
		c.step("a reload keeps the sign-in (the cookie)",
			chromedp.Reload(),
			c.until(`document.querySelector("#nav a[href='#/overview']") !== null && document.querySelector("#who-name").textContent.includes("Sở TT&TT")`),
			c.until(`document.querySelector("#live").className === "on"`))
		// Another tab signs out: the same cookie session ends, and this
		// tab goes back to the sign-in screen by itself.
		c.eval(`fetch("/api/v1/me").then((r) => r.json()).then((m) => fetch("/api/v1/logout", {method: "POST", headers: {"X-CSRF-Token": m.csrf}}))`)
		c.step("back to the sign-in screen",
			c.until(`location.hash === "#/login" && document.querySelector("#login-form") !== null && document.querySelector("#nav").hidden`))
		c.signInAs("province", province)
	})

	t.Run("PlayNowAndStop", func(t *testing.T) {
		c := c.with(t)
		c.go_("play")
		c.step("an invalid duration is refused next to its field, in Vietnamese",
			chromedp.SetValue(chromedp.ID("play-area"), "bc"),
			chromedp.SendKeys(chromedp.ID("play-max"), "mãi mãi"),
			chromedp.Click(chromedp.CSS("#play-form button[type=submit]")),
			c.until(`!document.querySelector("#play-max-error").hidden`))
		if got := c.text("#play-max-error"); !strings.Contains(got, "Thời lượng tối đa phải có dạng") {
			t.Errorf("error next to the duration: %q", got)
		}
		c.step("play to Bình Châu",
			chromedp.SetValue(chromedp.ID("play-max"), "5m"),
			chromedp.Click(chromedp.CSS("#play-form button[type=submit]")),
			c.until(`document.querySelector("#play-sessions button.stop") !== null`))
		c.check("play")
		c.step("stop",
			chromedp.Click(chromedp.CSS("#play-sessions button.stop")),
			c.until(`document.querySelector("#play-sessions button.stop") === null`))
	})

	t.Run("Upload", func(t *testing.T) {
		c := c.with(t)
		c.go_("media")
		c.step("upload a file",
			chromedp.SendKeys(chromedp.ID("upload-name"), "Thông báo tiêm chủng"),
			chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{audio}),
			chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
			c.until(`document.querySelector("#media-list").textContent.includes("Thông báo tiêm chủng")`))
		c.check("media")
	})

	t.Run("Devices", func(t *testing.T) {
		c := c.with(t)
		c.go_("devices")
		c.step("the receivers are listed",
			c.until(`document.querySelectorAll("#devices-list li[data-id]").length === 6`),
			c.until(`document.querySelector("#devices-list li[data-id='bc-1'] .state").textContent.includes("Trực tuyến")`))
		c.check("devices")

		// The problem filter, read again when an alarm comes or goes.
		c.step("filter on amplifier faults",
			chromedp.SetValue(chromedp.ID("devices-problem"), "amp_fault"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#devices-problem").dispatchEvent(new Event("change"))`),
			c.until(`document.querySelector("#devices-list li[data-id]") === null`))
		if err := s.rx["na-1"].SetAmpFault(true); err != nil {
			t.Fatal(err)
		}
		c.step("the faulty receiver appears",
			c.until(`document.querySelectorAll("#devices-list li[data-id]").length === 1 && document.querySelector("#devices-list li[data-id='na-1'] .problems").textContent === "Lỗi bộ khuếch đại"`))
		if err := s.rx["na-1"].SetAmpFault(false); err != nil {
			t.Fatal(err)
		}
		c.step("and goes when repaired",
			c.until(`document.querySelector("#devices-list li[data-id]") === null`))
	})

	t.Run("AlertDesk", func(t *testing.T) {
		c := c.with(t)
		c.go_("alerts")
		c.step("send a spoken alert to Bình Châu",
			chromedp.SendKeys(chromedp.ID("alert-title"), "Cảnh báo lũ quét"),
			chromedp.SendKeys(chromedp.ID("alert-text"), "Bà con sơ tán ngay."),
			chromedp.Click(chromedp.ID("alert-area-bc")),
			chromedp.SetValue(chromedp.ID("alert-repeats"), "1"),
			chromedp.SetValue(chromedp.ID("alert-gap"), "0"),
			chromedp.Click(chromedp.CSS(`#alert-form button[type=submit]`)),
			c.until(`!document.querySelector("#alert-confirm").hidden`),
			chromedp.Click(chromedp.ID("alert-confirm-send")),
			c.until(`!document.querySelector("#alert-report").hidden`),
			c.until(`document.querySelector("#alert-report-all").textContent.includes("Tổng 2 thiết bị")`))
		c.step("the live report shows both receivers played it",
			c.until(`document.querySelector("#alert-report-all").textContent.includes("2 đã phát xong")`),
			c.until(`document.querySelector("#alert-report-state").textContent.includes("đã xong")`))
		if areas := c.text("#alert-areas-report"); !strings.Contains(areas, "Xã Bình Châu") || strings.Contains(areas, "Tịnh Kỳ") {
			t.Errorf("per-area totals: %q", areas)
		}
		if failed := c.text("#alert-failed"); !strings.Contains(failed, "Không có thiết bị lỗi") {
			t.Errorf("failed receivers of a delivered alert: %q", failed)
		}

		// Focus and what was typed stay put while live updates arrive:
		// the area boxes and the form are never rebuilt.
		c.step("focus an area box, then an alert sent elsewhere arrives",
			chromedp.Focus(chromedp.ID("alert-area-tk")))
		other := map[string]any{"title": "Tin nơi khác", "level": "uu_tien", "content": map[string]any{"text": "Thử."},
			"targets": map[string]any{"areas": []string{"tk"}}, "repeats": 1}
		if err := s.api.JSON(bg, "POST", "/api/v1/alerts", other, nil); err != nil {
			t.Fatal(err)
		}
		c.step("the recent list updates",
			c.until(`document.querySelector("#alerts-recent").textContent.includes("Tin nơi khác")`))
		if id := c.evalString(`document.activeElement.id`); id != "alert-area-tk" {
			t.Errorf("focus moved to %q during a live update", id)
		}
		if !c.evalBool(`document.querySelector("#alert-area-bc").checked && document.querySelector("#alert-title").value === "Cảnh báo lũ quét"`) {
			t.Error("a live update lost the form's ticks or text")
		}

		c.step("send a long alert and cancel it from the page",
			chromedp.SetValue(chromedp.ID("alert-title"), "Cảnh báo dài"),
			chromedp.SetValue(chromedp.ID("alert-repeats"), "10"),
			chromedp.SetValue(chromedp.ID("alert-gap"), "60"),
			chromedp.Click(chromedp.CSS(`#alert-form button[type=submit]`)),
			c.until(`!document.querySelector("#alert-confirm").hidden`),
			chromedp.Click(chromedp.ID("alert-confirm-send")),
			c.until(`document.querySelector("#alert-report-title").textContent.includes("Cảnh báo dài")`),
			c.until(`document.querySelector("#alert-report-all").textContent.includes("2 đang phát")`),
			chromedp.Click(chromedp.ID("alert-cancel")),
			c.until(`document.querySelector("#alert-report-state").textContent.includes("đã hủy")`),
			c.until(`document.querySelectorAll("#alert-cancelled li[data-id]").length === 2`))
		// Cancelled, not failed.
		if got := c.text("#alert-cancelled"); !strings.Contains(got, "bc-1") || !strings.Contains(got, "bc-2") || !strings.Contains(got, "đã hủy") {
			t.Errorf("cancelled receivers of a cancelled alert: %q", got)
		}
		if failed := c.text("#alert-failed"); !strings.Contains(failed, "Không có thiết bị lỗi") {
			t.Errorf("failed receivers of a cancelled alert: %q", failed)
		}
		if recent := c.text("#alerts-recent"); !strings.Contains(recent, "Cảnh báo dài") || !strings.Contains(recent, "Cảnh báo lũ quét") {
			t.Errorf("recent alerts: %q", recent)
		}
		c.check("alerts")
	})

	t.Run("Log", func(t *testing.T) {
		c := c.with(t)
		c.go_("log")
		c.step("the broadcast log lists what played",
			c.until(`document.querySelector("#log-list").textContent.includes("Bản tin sáng")`))
		if got := c.text("#log-list"); !strings.Contains(got, "bắt đầu") || !regexpDate.MatchString(got) {
			t.Errorf("log in Vietnamese with dd/MM/yyyy HH:mm dates: %q", got)
		}
		c.check("log")
	})

	t.Run("PhoneMenu", func(t *testing.T) {
		c := c.with(t)
		c.go_("overview")
		c.step("at 375 px the navigation is a menu",
			chromedp.EmulateViewport(375, 800),
			c.until(`window.innerWidth === 375`),
			c.until(`getComputedStyle(document.querySelector("#nav")).display === "none"`),
			chromedp.Click(chromedp.ID("menu")),
			c.until(`getComputedStyle(document.querySelector("#nav")).display !== "none" && document.querySelector("#menu").getAttribute("aria-expanded") === "true"`))
		if !c.evalBool(`[...document.querySelectorAll("#nav a, header button, main button, main select, main input:not([type=checkbox]):not([type=radio])")].every((e) => e.getBoundingClientRect().height >= 44)`) {
			t.Error("a touch target is under 44 px tall")
		}
		c.step("a menu entry opens its screen and closes the menu",
			chromedp.Click(chromedp.CSS(`#nav a[href="#/devices"]`)),
			c.until(`document.querySelector("h1").textContent === "Thiết bị"`),
			c.until(`getComputedStyle(document.querySelector("#nav")).display === "none"`),
			chromedp.EmulateViewport(1400, 900),
			c.until(`window.innerWidth === 1400`))
	})

	t.Run("Language", func(t *testing.T) {
		c := c.with(t)
		c.go_("overview")
		c.step("switch to English",
			chromedp.Click(chromedp.ID("lang")),
			c.until(`document.documentElement.lang === "en" && document.querySelector("#nav").textContent.includes("Overview")`))
		c.step("the choice is remembered after a reload",
			chromedp.Reload(),
			c.until(`document.querySelector("#nav a[href='#/overview']") !== null`),
			c.until(`document.querySelector("h1").textContent === "Overview"`))
		c.check("overview-en")
		c.step("back to Vietnamese",
			chromedp.Click(chromedp.ID("lang")),
			c.until(`document.documentElement.lang === "vi" && document.querySelector("h1").textContent === "Tổng quan"`))
	})

	t.Run("TechnicianSeesNoPlayOrUpload", func(t *testing.T) {
		c := c.with(t)
		c.signOut()
		c.signInAs("technician", technician)
		for _, path := range []string{"play", "alerts", "users"} {
			if c.evalBool(`document.querySelector("#nav a[href='#/` + path + `']") !== null`) {
				t.Errorf("the technician is shown %s", path)
			}
		}
		c.go_("media")
		c.step("the library without an upload form",
			c.until(`document.querySelector("h1").textContent === "Thư viện âm thanh" && document.querySelector("#media-list li[data-id]") !== null`))
		if c.evalBool(`document.querySelector("#upload-form") !== null`) {
			t.Error("the technician is shown the upload form")
		}
		c.check("technician-media")
	})

	t.Run("OperatorPlaylist", func(t *testing.T) {
		c := c.with(t)
		jingle, err := s.api.UploadMedia(bg, "Nhạc hiệu", sineWAV(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.signOut()
		c.signInAs("operator", operator)
		c.go_("playlists")
		pick := func(id string) chromedp.Action[chromedp.Void] {
			return chromedp.SetValue(chromedp.ID("playlist-add-media"), id)
		}
		order := `[...document.querySelectorAll("#playlist-items li .title")].map((e) => e.textContent).join(" | ")`
		c.step("build a playlist of two items",
			chromedp.SendKeys(chromedp.ID("playlist-name"), "Bản tin chiều"),
			pick(news.ID), chromedp.Click(chromedp.ID("playlist-add")),
			pick(jingle.ID), chromedp.Click(chromedp.ID("playlist-add")),
			c.until(`document.querySelector("#playlist-total").textContent === "Tổng thời lượng: 1:07 (2 bản tin)"`)) // 60 s + 2 s, 3 s + 2 s
		c.step("move the jingle first with its button",
			chromedp.Click(chromedp.CSS(`#playlist-items li:nth-child(2) button.up`)),
			c.until(order+` === "⠿ 1. Nhạc hiệu | ⠿ 2. Bản tin sáng"`),
			c.until(`document.activeElement.matches("#playlist-items li:nth-child(1) button.down")`)) // ↑ is disabled at the top: focus stays on the item
		c.step("drag the news back before it",
			chromedp.Evaluate[chromedp.Void](`(() => {
				const [a, b] = document.querySelectorAll("#playlist-items li");
				const dt = new DataTransfer();
				b.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: dt}));
				a.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: dt}));
				a.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt}));
				b.dispatchEvent(new DragEvent("dragend", {bubbles: true, dataTransfer: dt}));
			})()`),
			c.until(order+` === "⠿ 1. Bản tin sáng | ⠿ 2. Nhạc hiệu"`))
		c.step("five seconds of silence after the jingle",
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#playlist-items li:nth-child(2) input.gap").value = ""`),
			chromedp.SendKeys(chromedp.CSS(`#playlist-items li:nth-child(2) input.gap`), "5"),
			c.until(`document.querySelector("#playlist-total").textContent === "Tổng thời lượng: 1:10 (2 bản tin)"`))
		c.check("playlists")
		c.step("save and play it now to Bình Châu",
			chromedp.SetValue(chromedp.ID("playlist-area"), "bc"),
			chromedp.Click(chromedp.ID("playlist-save-play")),
			c.until(`document.querySelector("#msg").textContent.includes("Đang phát Bản tin chiều tới 2 thiết bị")`),
			c.until(`document.querySelector("#playlists-list").textContent.includes("Bản tin chiều")`),
			c.until(`document.querySelector("#playlists-list").textContent.includes("2 bản tin · 1:10")`))
		var lists []struct {
			ID, Name string
			Items    []playlistItem `json:"items"`
		}
		if err := s.api.JSON(bg, "GET", "/api/v1/playlists", nil, &lists); err != nil {
			t.Fatal(err)
		}
		var pl string
		for _, p := range lists {
			if p.Name == "Bản tin chiều" {
				pl = p.ID
				if got := fmt.Sprint(p.Items); got != fmt.Sprint([]playlistItem{{news.ID, "2s"}, {jingle.ID, "5s"}}) {
					t.Errorf("saved items %s", got)
				}
			}
		}
		var sessions []loa.Session
		if err := s.api.JSON(bg, "GET", "/api/v1/sessions", nil, &sessions); err != nil {
			t.Fatal(err)
		}
		var played string
		for _, sess := range sessions {
			if sess.PlaylistID == pl && pl != "" && sess.State == loa.SessionPlaying {
				played = sess.ID
			}
		}
		if played == "" {
			t.Fatalf("no session plays the playlist %q", pl)
		}
		c.go_("play")
		c.step("it plays under its name, and stops",
			c.until(fmt.Sprintf(`(document.querySelector("#play-sessions li[data-id='%s'] .title") || {}).textContent === "▶ Bản tin chiều"`, played)),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#play-sessions li[data-id='%s'] button.stop`, played))),
			c.until(`document.querySelector("#play-sessions li[data-id]") === null`))
	})

	t.Run("OperatorScope", func(t *testing.T) {
		c := c.with(t)
		c.signOut()
		c.check("login")
		c.signInAs("operator", operator)
		c.step("the commune operator sees its own receivers and no alert desk",
			c.until(`document.querySelector("#count-total").textContent === "2"`))
		if c.evalBool(`document.querySelector("#nav a[href='#/alerts']") !== null`) {
			t.Error("the operator is shown the alert desk")
		}
		c.go_("alerts") // not allowed: back to the overview
		c.step("the alert desk route falls back to the overview",
			c.until(`location.hash === "#/overview" && document.querySelector("#alert-form") === null`))
		c.go_("devices")
		c.step("only Bình Châu's receivers",
			c.until(`document.querySelectorAll("#devices-list li[data-id]").length === 2`))
		if got := c.text("#devices-list"); strings.Contains(got, "tk-1") {
			t.Errorf("the operator sees another commune's receiver: %q", got)
		}
		c.check("operator-devices")

		// Disabled while signed in (its sessions end): the stream ends,
		// and the console says why on its sign-in screen.
		if err := s.api.JSON(bg, "POST", "/api/v1/users/"+operator+"/disable", nil, nil); err != nil {
			t.Fatal(err)
		}
		c.step("back to the sign-in screen, saying why",
			c.until(`document.querySelector("#login-note") !== null && document.querySelector("#login-note").textContent.includes("Phiên đăng nhập đã hết hạn")`))
	})

	t.Run("AdminManagesUsersAndTokens", func(t *testing.T) {
		c := c.with(t)
		capTok := token("Máy nhận CAP", "province", "qn")
		capID := tokenID(t, s, capTok)
		c.signInAs("admin", admin)
		c.go_("users")
		c.step("the users are listed",
			c.until(`document.querySelector("#users-list li[data-id='so-tttt']") !== null && document.querySelector("#users-list li[data-id='quan-tri'] .state").textContent === "Đang hoạt động"`))
		c.step("a short password is refused next to its field",
			chromedp.SendKeys(chromedp.ID("user-username"), "cb-tinhky"),
			chromedp.SendKeys(chromedp.ID("user-name"), "Cán bộ Tịnh Kỳ"),
			chromedp.SendKeys(chromedp.ID("user-password"), "ngan"),
			chromedp.SetValue(chromedp.ID("user-role"), "operator"),
			chromedp.SetValue(chromedp.ID("user-area"), "tk"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#user-password").removeAttribute("minlength")`), // as a browser without it would send
			chromedp.Click(chromedp.CSS("#user-form button[type=submit]")),
			c.until(`!document.querySelector("#user-password-error").hidden && document.querySelector("#user-password-error").textContent.includes("ít nhất 10 ký tự")`))
		c.step("create a commune operator of Tịnh Kỳ",
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#user-password").value = ""`),
			chromedp.SendKeys(chromedp.ID("user-password"), consolePassword),
			chromedp.Click(chromedp.CSS("#user-form button[type=submit]")),
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky']") !== null`),
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky'] .meta").textContent === "Cán bộ xã · Phường Tịnh Kỳ"`))
		c.step("the same username again is refused next to its field",
			chromedp.SendKeys(chromedp.ID("user-username"), "cb-tinhky"),
			chromedp.SendKeys(chromedp.ID("user-name"), "Trùng tên"),
			chromedp.SendKeys(chromedp.ID("user-password"), consolePassword),
			chromedp.Click(chromedp.CSS("#user-form button[type=submit]")),
			c.until(`!document.querySelector("#user-username-error").hidden && document.querySelector("#user-username-error").textContent.includes("đã có người dùng")`))
		c.step("make them the approver of Tịnh Kỳ",
			chromedp.Click(chromedp.CSS(`#users-list li[data-id='cb-tinhky'] details summary`)),
			chromedp.SetValue(chromedp.ID("user-cb-tinhky-role"), "approver"),
			chromedp.Click(chromedp.CSS(`#users-list li[data-id='cb-tinhky'] button.save`)),
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky'] .meta").textContent === "Lãnh đạo phê duyệt · Phường Tịnh Kỳ"`))
		var u loa.User
		if err := s.api.JSON(bg, "GET", "/api/v1/users/cb-tinhky", nil, &u); err != nil || u.Role != loa.RoleApprover || u.AreaID != "tk" || u.Disabled {
			t.Errorf("after the console's changes the user is %+v, %v", u, err)
		}
		const newPassword = "Mat-khau-moi-2026"
		c.step("reset their password",
			chromedp.SendKeys(chromedp.ID("user-cb-tinhky-password"), newPassword),
			chromedp.Click(chromedp.CSS(`#users-list li[data-id='cb-tinhky'] button.reset`)),
			c.until(`document.querySelector("#msg").textContent.includes("Đã đặt lại mật khẩu")`))
		c.step("disable them",
			chromedp.Click(chromedp.CSS(`#users-list li[data-id='cb-tinhky'] button.toggle`)),
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky'] .state").textContent === "Đã khoá"`))
		c.check("users")

		c.step("revoke a machine's token",
			c.until(fmt.Sprintf(`document.querySelector("#tokens-list li[data-id='%s'] .title") !== null`, capID)),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#tokens-list li[data-id=%q] button.revoke`, capID))),
			c.until(fmt.Sprintf(`document.querySelector("#tokens-list li[data-id='%s'] .state").textContent.startsWith("Đã thu hồi")`, capID)))
		if err := api.NewClient(s.m.URL(), capTok).JSON(bg, "GET", "/api/v1/me", nil, nil); err == nil {
			t.Errorf("the revoked token still works: %v", err)
		}

		// The disabled account is told so, in words, with the new password.
		c.signOut()
		c.step("a disabled account is refused in words",
			chromedp.SendKeys(chromedp.ID("login-user"), "cb-tinhky"),
			chromedp.SendKeys(chromedp.ID("login-pass"), newPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
			c.until(`!document.querySelector("#login-error").hidden && document.querySelector("#login-error").textContent.includes("Tài khoản này đã bị khoá")`))
		c.signInAs("admin", admin)
		c.go_("users")
		c.step("enable them again",
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky'] .state") !== null`),
			chromedp.Click(chromedp.CSS(`#users-list li[data-id='cb-tinhky'] button.toggle`)),
			c.until(`document.querySelector("#users-list li[data-id='cb-tinhky'] .state").textContent === "Đang hoạt động"`))
		c.signOut()
		c.step("and they sign in with the new password",
			chromedp.SendKeys(chromedp.ID("login-user"), "cb-tinhky"),
			chromedp.SendKeys(chromedp.ID("login-pass"), newPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
			c.until(`document.querySelector("#who-name").textContent.includes("Cán bộ Tịnh Kỳ")`))
		if c.evalBool(`document.querySelector("#nav a[href='#/users']") !== null`) {
			t.Error("the approver is shown the users screen")
		}
	})

	// The jobs in console_*_test.go, each a subtest on the same controller
	// and browser, in file order.
	for _, p := range consoleParts {
		t.Run(p.name, func(t *testing.T) { p.run(t, f.with(t)) })
	}
}

// consoleFixture is what TestConsole sets up for every job: the
// controller (with the Quảng Ngãi topology of startCAPSystem), the
// browser, and the people who sign in.
type consoleFixture struct {
	s     *capSystem
	c     *console
	token func(name, role, area string) string // a token's secret
	user  func(username, name, role, area string) string
	// province (qn), operator (bc), technician (qn), admin: usernames,
	// each with consolePassword.
	province, operator, technician, admin string
	provinceToken                         string
	news                                  *loa.Media // one minute of tone, "Bản tin sáng"
	audio                                 string     // a one-second WAV file to upload
}

// with is the fixture whose console reports to t (a subtest).
func (f *consoleFixture) with(t *testing.T) *consoleFixture {
	g := *f
	g.c = f.c.with(t)
	return &g
}

// consolePart is one job of the console, added to consoleParts by its
// file's init so each job lives in a file of its own.
type consolePart struct {
	name string
	run  func(t *testing.T, f *consoleFixture)
}

var consoleParts []consolePart

// console is the browser session TestConsole drives.
type console struct {
	t   *testing.T
	ctx context.Context
	axe string
	art string
	url string
	// glossaryGap is a JavaScript regexp matching a glossary key shown as
	// it is: a word missing from web/i18n.
	glossaryGap string
}

// with is the console reporting to t (a subtest), with a deadline of
// its own: the jobs together outlast any one deadline.
func (c *console) with(t *testing.T) *console {
	d := *c
	d.t = t
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 2*time.Minute)
	t.Cleanup(cancel)
	d.ctx = ctx
	return &d
}

func (c *console) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		msg, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`(document.querySelector("#msg")||{}).textContent + " | " + [...document.querySelectorAll(".action-error:not([hidden]),.field-error:not([hidden])")].map(e=>e.textContent).join(" | ")`))
		c.t.Fatalf("%s: %v (page says %q)", name, err, msg)
	}
}

// until waits for js to hold. An element not there yet (a screen still
// mounting) is "not yet", not a failure: a throw counts as false.
func (c *console) until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool]("(() => { try { return !!("+js+"); } catch (e) { return false; } })()"))
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", js, err)
		}
		return nil
	})
}

func (c *console) text(sel string) string {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (c *console) eval(js string) {
	c.t.Helper()
	if _, err := chromedp.Run(c.ctx, chromedp.Evaluate[any](js)); err != nil {
		c.t.Fatalf("%s: %v", js, err)
	}
}

func (c *console) evalBool(js string) bool {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		c.t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (c *console) evalString(js string) string {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		c.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// evalAwait is the string a promise resolves to.
func (c *console) evalAwait(js string) string {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// go_ opens a screen by its navigation link (the menu at phone width).
func (c *console) go_(path string) {
	c.t.Helper()
	c.step("open "+path,
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/`+path+`"`),
		c.until(`document.querySelector("#nav a[aria-current=page]") && document.querySelector("#nav a[aria-current=page]").dataset.path === "`+path+`" || location.hash !== "#/`+path+`"`))
}

// playlistItem is an item of a playlist as the API answers it.
type playlistItem struct {
	MediaID string `json:"media_id"`
	Gap     string `json:"gap"`
}

// tokenID is the id of the token whose secret is secret.
func tokenID(t *testing.T, s *capSystem, secret string) string {
	t.Helper()
	var me struct{ User string }
	if err := api.NewClient(s.m.URL(), secret).JSON(context.Background(), "GET", "/api/v1/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	return me.User
}

// consolePassword is every TestConsole user's password.
const consolePassword = "Loa-thu-nghiem-2026"

// signInAs signs in through the sign-in screen's username and password
// form, typing as a person would.
func (c *console) signInAs(who, username string) {
	c.t.Helper()
	c.step("open the sign-in screen",
		chromedp.Navigate(c.url+"/#/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")))
	c.step("sign in as "+who,
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#login-user").value = document.querySelector("#login-pass").value = ""`),
		chromedp.SendKeys(chromedp.ID("login-user"), username),
		chromedp.SendKeys(chromedp.ID("login-pass"), consolePassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("nav")),
		c.until(`location.hash === "#/overview" && document.querySelector("#live").className === "on"`))
}

func (c *console) signOut() {
	c.t.Helper()
	c.step("sign out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")))
}

// check looks at the current screen at 1400 and 375 px: no sideways
// scroll on the phone, screenshots into the artefact directory, and
// axe-core with no serious or critical violation.
func (c *console) check(name string) {
	c.t.Helper()
	for _, w := range []int64{1400, 375} {
		c.step(fmt.Sprintf("%s at %d px", name, w),
			chromedp.EmulateViewport(w, 900),
			chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
			c.until(fmt.Sprintf(`window.innerWidth === %d`, w)))
		if gaps := c.evalString(`(document.body.innerText.match(` + c.glossaryGap + `) || []).join(", ")`); gaps != "" {
			c.t.Errorf("%s shows glossary keys, not words: %s", name, gaps)
		}
		if bad := c.evalString(`(document.querySelector("main").innerText.match(/\b(null|undefined|NaN)\b/g) || []).join(", ")`); bad != "" {
			c.t.Errorf("%s shows %s", name, bad)
		}
		if dup := c.evalString(`(() => { const seen = new Set(), dup = []; for (const e of document.querySelectorAll("[id]")) { if (seen.has(e.id)) dup.push(e.id); seen.add(e.id); } return dup.join(", "); })()`); dup != "" {
			c.t.Errorf("%s has duplicate ids: %s", name, dup)
		}
		if w == 375 && !c.evalBool(`document.documentElement.scrollWidth <= 375`) {
			c.t.Errorf("%s at 375 px: scrollWidth %s, wider than the screen", name, c.evalString(`String(document.documentElement.scrollWidth)`))
		}
		shot, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			c.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(c.art, fmt.Sprintf("console-%s-%d.png", name, w)), shot, 0o644); err != nil {
			c.t.Fatal(err)
		}
		c.axeCheck(fmt.Sprintf("%s at %d px", name, w))
	}
	c.step("back to the desktop width", chromedp.EmulateViewport(1400, 900), c.until(`window.innerWidth === 1400`))
}

// axeCheck runs axe-core on the page and fails on serious or critical
// violations. axe is injected over the DevTools protocol: the console's
// CSP lets it load nothing but its own files.
func (c *console) axeCheck(where string) {
	c.t.Helper()
	if !c.evalBool(`typeof window.axe !== "undefined"`) {
		c.eval(c.axe)
	}
	found, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then((r) =>
		r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
			.map((v) => v.impact + " " + v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")))`, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("axe on %s: %v", where, err)
	}
	for _, v := range found {
		c.t.Errorf("axe on %s: %s", where, v)
	}
}

// glossaryGap builds a regexp of the glossary's key prefixes ("nav.",
// "log.event.") followed by a key's next word.
func glossaryGap(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "web", "i18n", "vi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]string
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]bool{}
	for k := range keys {
		prefixes[regexp.QuoteMeta(strings.SplitN(k, ".", 2)[0])] = true
	}
	return `/\b(` + strings.Join(slices.Sorted(maps.Keys(prefixes)), "|") + `)\.[a-z_]+/g`
}

// artefactDir is where the screenshots go: $LOA_ARTIFACTS if set (CI
// keeps it), else the test's temporary directory.
func artefactDir(t *testing.T) string {
	if d := os.Getenv("LOA_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// sineWAV is d of a 440 Hz tone, mono 48 kHz.
func sineWAV(d time.Duration) []byte {
	const rate = 48000
	x := make([]float32, int(d.Seconds()*rate))
	for i := range x {
		x[i] = float32(0.3 * math.Sin(2*math.Pi*440*float64(i)/rate))
	}
	return floatWAV(x, rate)
}
