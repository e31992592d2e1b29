package daemon

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
)

// The operator's desk and the province's alert desk (issue 10): the
// media library, the broadcast log and its export, the alert desk.
func init() {
	consoleParts = append(consoleParts,
		consolePart{"OperatorMediaLibrary", opdesk(consoleMediaLibrary)},
		consolePart{"OperatorLogExport", opdesk(consoleLogExport)},
		consolePart{"ProvinceAlertDesk", opdesk(consoleAlertDesk)},
	)
}

// opdesk runs a job with a browser deadline of its own: the shared
// browser's two minutes are TestConsole's first jobs' (and on a busy
// machine they may use most of them).
func opdesk(job func(*testing.T, *consoleFixture)) func(*testing.T, *consoleFixture) {
	return func(t *testing.T, f *consoleFixture) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(f.c.ctx), 2*time.Minute)
		defer cancel()
		// confirm() before deleting, sending, cancelling: accepted, as
		// TestConsole's own handler does while its deadline lasts.
		go func() {
			for _, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
				if err != nil {
					return
				}
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}
		}()
		// The page's uncaught errors, in the test's log.
		go func() {
			for ev, err := range chromedp.Events(ctx, cdpruntime.ExceptionThrown) {
				if err != nil {
					return
				}
				if d := ev.ExceptionDetails; d != nil {
					msg := d.Text
					if d.Exception != nil {
						msg += " " + d.Exception.Description
					}
					t.Logf("page error: %s (%s:%d)", msg, d.URL, d.LineNumber)
				}
			}
		}()
		c := *f.c
		c.ctx = ctx
		g := *f
		g.c = &c
		defer func() {
			if !t.Failed() {
				return
			}
			// What the page showed when the job failed, for the artefacts.
			shot, cancel := context.WithTimeout(context.WithoutCancel(f.c.ctx), 20*time.Second)
			defer cancel()
			if state, err := chromedp.Run(shot, chromedp.Evaluate[string](`"live=" + document.querySelector("#live").className + " report=" + (document.querySelector("#alert-report-all") || {}).textContent`)); err == nil {
				t.Logf("the page at the failure: %s", state)
			}
			if png, err := chromedp.Run(shot, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(c.art, "console-failed-"+strings.ReplaceAll(t.Name(), "/", "-")+".png"), png, 0o644)
			} else {
				t.Logf("no screenshot of the failure: %v", err)
			}
		}()
		job(t, &g)
	}
}

// consoleMediaLibrary: the operator uploads, listens, renames, is told in
// words why a used item cannot go, deletes an unused one, and is told a
// second upload of the same audio is already there.
func consoleMediaLibrary(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	file := filepath.Join(t.TempDir(), "tin văn nghệ.wav")
	if err := os.WriteFile(file, sineWAV(1500*time.Millisecond), 0o600); err != nil {
		t.Fatal(err)
	}
	c.signOut()
	// People of their own: earlier jobs may disable the fixture's.
	c.signInAs("operator", f.user("cb-thuvien", "Cán bộ thư viện Bình Châu", loa.RoleOperator, "bc"))
	c.go_("media")
	c.step("upload a file",
		chromedp.SendKeys(chromedp.ID("upload-name"), "Tin văn nghệ"),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		click("#upload-form button[type=submit]"),
		c.until(`[...document.querySelectorAll("#media-list li[data-id] .title")].some((e) => e.textContent === "Tin văn nghệ")`))
	id := c.evalString(`[...document.querySelectorAll("#media-list li[data-id]")].find((li) => li.querySelector(".title").textContent === "Tin văn nghệ").dataset.id`)
	item := fmt.Sprintf(`#media-list li[data-id=%q]`, id)
	if meta := c.text(item + " .meta"); !strings.Contains(meta, "0:02") || !strings.Contains(meta, "LUFS") {
		t.Errorf("the item's duration and loudness: %q", meta)
	}

	c.step("listen to it in the browser",
		click(item+" button.listen"),
		c.until(`(() => { const a = document.querySelector(`+quoteJS(item+" audio")+`); return a.readyState >= 2 || a.duration > 0; })()`))
	if d := c.evalString(`String(document.querySelector(` + quoteJS(item+" audio") + `).duration)`); !strings.HasPrefix(d, "1.") {
		t.Errorf("the player's duration: %s s, want about 1.5", d)
	}

	c.step("rename it",
		centre(item),
		click(item+" details.edit summary"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+quoteJS("#media-"+id+"-name")+`).value = ""`),
		chromedp.SendKeys(chromedp.ID("media-"+id+"-name"), "Tin văn nghệ tối"),
		click(item+" button.rename"),
		c.until(`document.querySelector(`+quoteJS(item+" .title")+`).textContent === "Tin văn nghệ tối"`))
	var m loa.Media
	if err := s.api.JSON(bg, "GET", "/api/v1/media/"+id, nil, &m); err != nil || m.Name != "Tin văn nghệ tối" {
		t.Errorf("after renaming, the library has %+v, %v", m, err)
	}

	// The morning news is in the schedule "Chương trình sáng": it stays.
	news := fmt.Sprintf(`#media-list li[data-id=%q]`, f.news.ID)
	c.step("try to delete an item the schedule uses",
		centre(news),
		click(news+" details.edit summary"),
		click(news+" button.delete"),
		c.until(`!document.querySelector(`+quoteJS("#media-"+f.news.ID+"-error")+`).hidden`))
	if got := c.text("#media-" + f.news.ID + "-error"); !strings.Contains(got, "đang được dùng") || !strings.Contains(got, "lịch phát “Chương trình sáng”") {
		t.Errorf("the refusal in words: %q", got)
	}
	if err := s.api.JSON(bg, "GET", "/api/v1/media/"+f.news.ID, nil, nil); err != nil {
		t.Errorf("a used item was deleted: %v", err)
	}
	c.check("media-operator")

	c.step("upload the same audio again",
		chromedp.SendKeys(chromedp.ID("upload-name"), "Bản sao"),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		click("#upload-form button[type=submit]"),
		c.until(`!document.querySelector("#upload-note").hidden`))
	if got := c.text("#upload-note"); !strings.Contains(got, "đã có trong thư viện với tên “Tin văn nghệ tối”") {
		t.Errorf("the duplicate upload says %q", got)
	}
	if c.evalBool(`[...document.querySelectorAll("#media-list .title")].some((e) => e.textContent === "Bản sao")`) {
		t.Error("the duplicate shows as a new item")
	}
	c.step("delete the unused one",
		centre(item),
		click(item+" button.delete"),
		c.until(`document.querySelector(`+quoteJS(item)+`) === null`))
	if err := s.api.JSON(bg, "GET", "/api/v1/media/"+id, nil, nil); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("after deleting, the item is still there: %v", err)
	}

}

// consoleLogExport: the operator filters the broadcast log by dates and a
// receiver, pages it, and downloads the same lines as CSV.
func consoleLogExport(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	// Something aired on bc-1 today: a short programme to Bình Châu.
	jingle, err := s.api.UploadMedia(bg, "Nhạc chờ nhật ký", sineWAV(1200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.api.StartSession(bg, api.SessionRequest{MediaID: jingle.ID, Targets: loa.Targets{Devices: []string{"bc-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, 30*time.Second, func() bool {
		var got struct{ State string }
		return s.api.JSON(bg, "GET", "/api/v1/sessions/"+sess.ID, nil, &got) == nil && got.State != loa.SessionPlaying
	}, "the session to end")
	vn, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(vn)
	var want []loa.PlayLogEntry
	q := "from=" + today.Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly) + "&device=bc-1&limit=1000"
	loatest.Eventually(t, 30*time.Second, func() bool {
		want = nil
		return s.api.JSON(bg, "GET", "/api/v1/playlog?"+q, nil, &want) == nil && slices.ContainsFunc(want, func(e loa.PlayLogEntry) bool {
			return e.SessionID == sess.ID && e.Event == loa.PlayAired
		})
	}, "bc-1 to have aired the programme")

	c.signOut()
	c.signInAs("operator", f.user("cb-nhatky", "Cán bộ nhật ký Bình Châu", loa.RoleOperator, "bc"))
	c.go_("log")
	c.step("a date the calendar does not have is refused next to its field",
		chromedp.SendKeys(chromedp.ID("log-from"), "31/02/2026"),
		click(`#log-filters button[type=submit]`),
		c.until(`!document.querySelector("#log-from-error").hidden`))
	if got := c.text("#log-from-error"); !strings.Contains(got, "ngày/tháng/năm") {
		t.Errorf("the bad date's message: %q", got)
	}
	d := today.Format("02/01/2006")
	c.step("filter on today and bc-1",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#log-from").value = ""`),
		chromedp.SendKeys(chromedp.ID("log-from"), d),
		chromedp.SendKeys(chromedp.ID("log-to"), d),
		chromedp.SendKeys(chromedp.ID("log-device"), "bc-1"),
		click(`#log-filters button[type=submit]`),
		c.until(`document.querySelector("#log-csv").getAttribute("href").includes("device=bc-1")`),
		c.until(`(document.querySelector("#log-list").dataset.query || "").includes("device=bc-1") && !document.querySelector("#log-list").hasAttribute("aria-busy")`),
		c.until(`document.querySelector("#log-list li[data-id]") !== null`))
	if got := c.text("#log-list"); !strings.Contains(got, "Nhạc chờ nhật ký") || !strings.Contains(got, "đã phát (thiết bị xác nhận)") || !regexpDate.MatchString(got) {
		t.Errorf("the filtered log: %q", got)
	}
	if c.evalBool(`[...document.querySelectorAll("#log-list li[data-id] .meta")].some((m) => !m.textContent.includes("bc-1"))`) {
		t.Error("a line of the filtered log does not name bc-1")
	}
	c.check("log-filtered")

	// The download link, fetched as the page would: the same lines as
	// the API's (read again until both agree: receivers' lines may
	// still be arriving).
	var rows [][]string
	loatest.Eventually(t, 30*time.Second, func() bool {
		csvText := c.evalAwait(`fetch(document.querySelector("#log-csv").href).then((r) => r.arrayBuffer()).then((b) => new TextDecoder("utf-8", {ignoreBOM: true}).decode(b))`)
		body, ok := strings.CutPrefix(csvText, "\uFEFF")
		if !ok {
			t.Fatalf("the CSV has no byte order mark: %.80q", csvText)
		}
		var err error
		if rows, err = csv.NewReader(strings.NewReader(body)).ReadAll(); err != nil {
			t.Fatalf("the CSV: %v", err)
		}
		want = nil
		if err := s.api.JSON(bg, "GET", "/api/v1/playlog?"+q, nil, &want); err != nil {
			t.Fatal(err)
		}
		return len(rows) == len(want)+1
	}, "the CSV to have the API's lines")
	if !strings.HasPrefix(rows[0][0], "Thời gian") {
		t.Errorf("the CSV's header: %q", rows[0])
	}
	aired := 0
	for _, r := range rows[1:] {
		if !strings.Contains(r[4], "bc-1") {
			t.Errorf("a CSV line without bc-1: %q", r)
		}
		if r[1] == "đã phát (thiết bị xác nhận)" && r[2] == "Nhạc chờ nhật ký" && strings.HasPrefix(r[0], d) {
			aired++
		}
	}
	if aired == 0 {
		t.Errorf("the CSV lacks the aired line in words: %q", rows)
	}
}

// consoleAlertDesk: the province hears a text alert before sending it,
// targets two communes on the tree, is told how many receivers will
// sound, follows the report to finished for each of them, cancels a
// second one (shown as cancelled), imports a CAP file and exports the
// history.
func consoleAlertDesk(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	// Two communes whose receivers are all online now (earlier jobs take
	// some offline), and how many receivers they hold.
	var devs []struct {
		ID     string `json:"id"`
		AreaID string `json:"area_id"`
		State  *struct{ Online bool }
	}
	if err := s.api.JSON(bg, "GET", "/api/v1/devices", nil, &devs); err != nil {
		t.Fatal(err)
	}
	var communes []string
	held := map[string]int{}
	for _, area := range []string{"bc", "sh", "na", "tk"} {
		all, n := true, 0
		for _, d := range devs {
			if d.AreaID == area {
				n++
				all = all && d.State != nil && d.State.Online
			}
		}
		if all && n > 0 && len(communes) < 2 {
			communes = append(communes, area)
			held[area] = n
		}
	}
	if len(communes) < 2 {
		t.Fatalf("fewer than two communes with every receiver online: %+v", devs)
	}
	receivers := held[communes[0]] + held[communes[1]]

	c.signOut()
	c.signInAs("province", f.user("so-canhbao", "Trực ban cảnh báo tỉnh", loa.RoleProvince, "qn"))
	c.go_("alerts")
	c.step("each area shows its receivers",
		c.until(fmt.Sprintf(`document.querySelector("label[for=alert-area-%s]").textContent.includes("%d thiết bị")`, communes[0], held[communes[0]])),
		c.until(fmt.Sprintf(`document.querySelector("label[for=alert-area-qn]").textContent.includes("%d thiết bị")`, len(devs))))

	c.step("write a spoken alert and hear it first",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#alert-title").value = document.querySelector("#alert-text").value = ""`),
		chromedp.SendKeys(chromedp.ID("alert-title"), "Tin bão số 3"),
		chromedp.SendKeys(chromedp.ID("alert-text"), "Bà con chằng chống nhà cửa trước 17 giờ."),
		click("#alert-preview"),
		c.until(`(() => { const a = document.querySelector("#alert-preview-audio"); return !a.hidden && (a.readyState >= 2 || a.duration > 0); })()`))
	if d := c.evalString(`String(document.querySelector("#alert-preview-audio").duration)`); d == "NaN" || d == "0" {
		t.Errorf("the preview's duration: %s", d)
	}

	c.step("no area: refused before any confirmation",
		chromedp.Evaluate[chromedp.Void](`for (const i of document.querySelectorAll("#alert-areas input:checked")) i.click()`),
		click(`#alert-form button[type=submit]`),
		c.until(`!document.querySelector("#alert-areas-error").hidden && document.querySelector("#alert-confirm").hidden`))
	c.step("eleven repeats: the server's check says so next to the field",
		click("#alert-area-"+communes[0]),
		click("#alert-area-"+communes[1]),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#alert-repeats").value = ""`),
		chromedp.SendKeys(chromedp.ID("alert-repeats"), "11"),
		click(`#alert-form button[type=submit]`),
		c.until(`!document.querySelector("#alert-repeats-error").hidden && document.querySelector("#alert-confirm").hidden`))
	c.step("the confirmation says how many receivers will sound",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#alert-repeats").value = document.querySelector("#alert-gap").value = ""`),
		chromedp.SendKeys(chromedp.ID("alert-repeats"), "1"),
		chromedp.SendKeys(chromedp.ID("alert-gap"), "0"),
		click(`#alert-form button[type=submit]`),
		c.until(`!document.querySelector("#alert-confirm").hidden`))
	if got := c.text("#alert-confirm-count"); !strings.Contains(got, fmt.Sprintf("Sẽ phát trên %d thiết bị", receivers)) {
		t.Errorf("the confirmation: %q, want %d receivers", got, receivers)
	}
	c.check("alert-confirm")
	c.step("send it; the report reaches finished for every receiver",
		click("#alert-confirm-send"),
		c.until(`document.querySelector("#alert-report-title").textContent.includes("Tin bão số 3")`),
		c.until(fmt.Sprintf(`document.querySelector("#alert-report-all").textContent.includes("Tổng %d thiết bị: %d đã phát xong")`, receivers, receivers)),
		c.until(`document.querySelector("#alert-report-state").textContent.includes("đã xong")`))
	row := fmt.Sprintf(`#alert-areas-report li[data-id=%q]`, communes[0])
	c.step("drill down to the first commune's receivers",
		centre(row),
		click(row+" button.drill"),
		c.until(fmt.Sprintf(`document.querySelectorAll(%q).length === %d`, row+" .drill-list li.device.finished", held[communes[0]])))
	if got := c.text(row + " .drill-list"); !strings.Contains(got, "đã phát xong") {
		t.Errorf("the drill-down: %q", got)
	}
	c.check("alert-report")

	c.step("a long second alert, cancelled from the report",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#alert-title").value = document.querySelector("#alert-repeats").value = document.querySelector("#alert-gap").value = ""`),
		chromedp.SendKeys(chromedp.ID("alert-title"), "Tin bão số 4"),
		chromedp.SendKeys(chromedp.ID("alert-repeats"), "10"),
		chromedp.SendKeys(chromedp.ID("alert-gap"), "60"),
		click(`#alert-form button[type=submit]`),
		c.until(`!document.querySelector("#alert-confirm").hidden`),
		click("#alert-confirm-send"),
		c.until(`document.querySelector("#alert-report-title").textContent.includes("Tin bão số 4")`),
		c.until(`!document.querySelector("#alert-cancel").hidden`),
		click("#alert-cancel"),
		c.until(`document.querySelector("#alert-report-state").textContent.includes("đã hủy")`),
		c.until(fmt.Sprintf(`document.querySelectorAll("#alert-cancelled li[data-id]").length === %d`, receivers)))
	if got := c.text("#alert-report-all"); !strings.Contains(got, fmt.Sprintf("%d đã hủy", receivers)) || !strings.Contains(got, "0 lỗi") {
		t.Errorf("the cancelled alert's totals: %q", got)
	}
	if got := c.text("#alert-areas-report"); !strings.Contains(got, fmt.Sprintf("Đã hủy %d", held[communes[0]])) {
		t.Errorf("the areas of a cancelled alert: %q", got)
	}

	// CAP by file: an exercise in Nghĩa An (marked for tests).
	capFile := filepath.Join(t.TempDir(), "diễn tập.xml")
	msg := capMessage{id: "PCTT-DT-" + strconv.FormatInt(time.Now().UnixNano(), 36), status: "Exercise", headline: "Diễn tập sơ tán", areaXML: geocodeArea("21091")}
	if err := os.WriteFile(capFile, msg.xml(), 0o600); err != nil {
		t.Fatal(err)
	}
	c.step("the province's account may not take this sender's CAP: said in words",
		chromedp.SetUploadFiles(chromedp.ID("cap-file"), []string{capFile}),
		click(`#cap-form button[type=submit]`),
		c.until(`!document.querySelector("#cap-error").hidden`))
	if got := c.text("#cap-error"); !strings.Contains(got, "không được nhận tin CAP") {
		t.Errorf("the CAP refusal: %q", got)
	}
	c.signOut()
	c.signInAs("admin", f.user("qt-canhbao", "Quản trị cảnh báo", loa.RoleAdmin, ""))
	c.go_("alerts")
	c.step("the station's admin imports it",
		chromedp.SetUploadFiles(chromedp.ID("cap-file"), []string{capFile}),
		click(`#cap-form button[type=submit]`),
		c.until(`!document.querySelector("#cap-note").hidden`),
		c.until(`document.querySelector("#alert-report-title").textContent.includes("Diễn tập sơ tán")`),
		c.until(`document.querySelector("#alert-report-state").textContent.includes("CAP `+msg.id+`")`))
	if got := c.text("#cap-note"); !strings.Contains(got, "Đã nhập tin CAP") {
		t.Errorf("the import's note: %q", got)
	}
	c.step("and cancels it",
		c.until(`!document.querySelector("#alert-cancel").hidden || document.querySelector("#alert-report-state").textContent.includes("đã xong")`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#alert-cancel").hidden || document.querySelector("#alert-cancel").click()`),
		c.until(`!document.querySelector("#alert-report-state").textContent.includes("đang phát")`))

	// The history, exported as the link downloads it.
	var alerts []struct{ Title string }
	if err := s.api.JSON(bg, "GET", "/api/v1/alerts?report=false", nil, &alerts); err != nil {
		t.Fatal(err)
	}
	c.step("the history lists them",
		c.until(`document.querySelector("#alerts-recent").textContent.includes("Tin bão số 4") && document.querySelector("#alerts-recent").textContent.includes("Diễn tập sơ tán")`))
	csvText := c.evalAwait(`fetch(document.querySelector("#alerts-csv").href).then((r) => r.text())`)
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(csvText, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("the history's CSV: %v", err)
	}
	if len(rows) != len(alerts)+1 {
		t.Errorf("the history's CSV has %d lines, want a header and %d", len(rows), len(alerts))
	}
	found := map[string]string{}
	for _, r := range rows[1:] {
		found[r[1]] = r[3]
	}
	if found["Tin bão số 3"] != "đã xong" || found["Tin bão số 4"] != "đã hủy" || found["Diễn tập sơ tán"] == "" {
		t.Errorf("the history's CSV: %q", rows)
	}
}

// click clicks the element sel after scrolling it to the middle of the
// window: the message box at the bottom may cover what is near it.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(centre(sel), chromedp.Click(chromedp.CSS(sel)))
}

// centre scrolls the element sel to the middle of the window, clear of
// the message box at the bottom.
func centre(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + quoteJS(sel) + `).scrollIntoView({block: "center"})`)
}

// quoteJS quotes s as a JavaScript string.
func quoteJS(s string) string { return fmt.Sprintf("%q", s) }
