package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

func init() { consoleParts = append(consoleParts, consolePart{"Approval", consoleApproval}) }

// consoleApproval: Tịnh Kỳ needs approval. Its operator uploads a
// programme and makes a playlist of it: both wait ("Chờ duyệt"). The
// commune's approver sees the count in the navigation, listens/reads,
// is told the playlist needs its programme approved first, approves
// both; the operator plays the playlist now and tk-1 plays it, and the
// play log names the approval.
func consoleApproval(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	setApproval := func(on bool) {
		if err := s.api.JSON(bg, "PUT", "/api/v1/areas/tk/approval", map[string]bool{"needs_approval": on}, nil); err != nil {
			t.Fatal(err)
		}
	}
	setApproval(true)
	t.Cleanup(func() { setApproval(false) })
	operator := f.user("vanthu-tinhky", "Văn thư Tịnh Kỳ", "operator", "tk")
	approver := f.user("chutich-tinhky", "Chủ tịch Tịnh Kỳ", "approver", "tk")
	audio := filepath.Join(t.TempDir(), "họp dân.wav")
	if err := os.WriteFile(audio, sineWAV(2*time.Second), 0o600); err != nil { // not the fixture's: an upload is kept once by content
		t.Fatal(err)
	}

	reviveTK1(t, s)

	c.signOut()
	c.signInAs("the operator of Tịnh Kỳ", operator)
	c.go_("media")
	c.step("the upload waits for approval",
		chromedp.SendKeys(chromedp.ID("upload-name"), "Thông báo họp dân"),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{audio}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		c.until(`document.querySelector("#msg").textContent.includes("Đã gửi chờ duyệt: Thông báo họp dân")`),
		c.until(`[...document.querySelectorAll("#media-list li")].some((li) => li.textContent.includes("Thông báo họp dân") && li.textContent.includes("Chờ duyệt"))`))
	var list []loa.Media
	if err := s.api.JSON(bg, "GET", "/api/v1/media", nil, &list); err != nil {
		t.Fatal(err)
	}
	var m loa.Media
	for _, x := range list {
		if x.Name == "Thông báo họp dân" {
			m = x
		}
	}
	if m.State != loa.MediaDraft {
		t.Fatalf("uploaded %+v: want a draft", m)
	}
	c.go_("playlists")
	c.step("the playlist of it waits too",
		chromedp.SendKeys(chromedp.ID("playlist-name"), "Họp dân"),
		chromedp.SetValue(chromedp.ID("playlist-add-media"), m.ID),
		chromedp.Click(chromedp.ID("playlist-add")),
		chromedp.Click(chromedp.ID("playlist-save")),
		c.until(`document.querySelector("#msg").textContent.includes("Đã gửi chờ duyệt: Họp dân")`),
		c.until(`[...document.querySelectorAll("#playlists-list li[data-id]")].some((li) => li.textContent.includes("Họp dân") && li.textContent.includes("Chờ duyệt") && li.querySelector("button.play").hidden)`))
	c.go_("drafts")
	c.step("the operator's own drafts, with a withdraw button",
		c.until(`document.querySelectorAll("#drafts-list li[data-id] button.withdraw").length === 2`))
	if c.evalBool(`document.querySelector("#drafts-list button.approve") !== null || document.querySelector("#drafts-badge:not([hidden])") !== null`) {
		t.Error("the operator is offered approval")
	}
	c.check("drafts-operator")

	// A machine of the commune proposes a weekly schedule: it waits too.
	var held loa.Draft
	sched := map[string]any{"id": "hop-dan-tuan", "name": "Họp dân hằng tuần", "content": map[string]string{"media_id": f.news.ID},
		"rule": map[string]any{"kind": "weekly", "weekdays": []string{"mon", "fri"}, "time": "06:00"}, "targets": map[string][]string{"areas": {"tk"}}}
	if err := api.NewClient(s.m.URL(), f.token("Văn thư Tịnh Kỳ (máy)", "operator", "tk")).JSON(bg, "POST", "/api/v1/schedules", sched, &held); err != nil {
		t.Fatal(err)
	}
	if held.Kind != loa.DraftSchedule || held.State != loa.DraftPending {
		t.Fatalf("the operator's schedule: %+v, want a pending draft", held)
	}

	c.signOut()
	c.signInAs("the approver of Tịnh Kỳ", approver)
	c.step("the count of waiting drafts in the navigation",
		c.until(`document.querySelector("#nav a[href='#/drafts'] #drafts-badge") && !document.querySelector("#drafts-badge").hidden && document.querySelector("#drafts-badge").textContent === "3"`))
	if c.evalBool(`document.querySelector("#nav a[href='#/play']") !== null || document.querySelector("#nav a[href='#/playlists']") !== null`) {
		t.Error("the approver is offered to play or make playlists")
	}
	c.go_("drafts")
	media := `[...document.querySelectorAll("#drafts-list li[data-id]")].find((li) => li.querySelector(".title").textContent.startsWith("Bản tin tải lên"))`
	playlist := `[...document.querySelectorAll("#drafts-list li[data-id]")].find((li) => li.querySelector(".title").textContent.startsWith("Danh sách phát"))`
	schedule := fmt.Sprintf(`document.querySelector("#drafts-list li[data-id='%s']")`, held.ID)
	c.step("what waits: who sent it, when, and what it is",
		c.until(`document.querySelectorAll("#drafts-list li[data-id]").length === 3`),
		c.until(schedule+`.querySelector(".rule").textContent === "Hằng tuần vào Thứ Hai, Thứ Sáu lúc 06:00"`),
		c.until(schedule+`.textContent.includes("Nội dung: Bản tin sáng (1:00)") && `+schedule+`.textContent.includes("Phát tới: Phường Tịnh Kỳ")`),
		c.until(`(`+media+`).textContent.includes("Gửi bởi vanthu-tinhky") && (`+media+`).textContent.includes("Thông báo họp dân · thời lượng 0:02")`),
		c.until(`(`+playlist+`).textContent.includes("1 bản tin · 0:04")`))
	c.check("drafts")
	c.step("reject the schedule, saying why",
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf(`#draft-%s-note`, held.ID)), "Trùng giờ họp"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#drafts-list li[data-id=%q] button.reject`, held.ID))),
		c.until(`document.querySelector("#msg").textContent.includes("Đã từ chối Họp dân hằng tuần")`),
		c.until(`document.querySelectorAll("#drafts-list li[data-id]").length === 2 && document.querySelector("#drafts-badge").textContent === "2"`))
	var rejected loa.Draft
	if err := s.api.JSON(bg, "GET", "/api/v1/drafts/"+held.ID, nil, &rejected); err != nil {
		t.Fatal(err)
	}
	if rejected.State != loa.DraftRejected || rejected.Note != "Trùng giờ họp" || rejected.DecidedBy != "user:"+approver {
		t.Errorf("rejected schedule: %+v", rejected)
	}
	if err := s.api.JSON(bg, "GET", "/api/v1/schedules/hop-dan-tuan", nil, nil); err == nil {
		t.Error("a rejected schedule was created")
	}
	c.step("the playlist first: its programme is not approved yet, said in words",
		chromedp.Evaluate[chromedp.Void](`(`+playlist+`).querySelector("button.approve").click()`),
		c.until(`!(`+playlist+`).querySelector(".action-error").hidden && (`+playlist+`).querySelector(".action-error").textContent.includes("đang chờ lãnh đạo duyệt")`))
	c.step("approve the programme, then the playlist",
		chromedp.Evaluate[chromedp.Void](`(`+media+`).querySelector("input.note").focus()`),
		chromedp.SendKeys(chromedp.CSS("#drafts-list input.note:focus"), "Nội dung phù hợp"),
		chromedp.Evaluate[chromedp.Void](`(`+media+`).querySelector("button.approve").click()`),
		c.until(`document.querySelector("#msg").textContent.includes("Đã duyệt Thông báo họp dân")`),
		c.until(`document.querySelectorAll("#drafts-list li[data-id]").length === 1 && document.querySelector("#drafts-badge").textContent === "1"`),
		chromedp.Evaluate[chromedp.Void](`(`+playlist+`).querySelector("button.approve").click()`),
		c.until(`document.querySelectorAll("#drafts-list li[data-id]").length === 0 && document.querySelector("#drafts-badge").hidden`))

	var audit []loa.AuditRecord
	if err := s.api.JSON(bg, "GET", "/api/v1/audit?limit=50", nil, &audit); err != nil {
		t.Fatal(err)
	}
	approvals := 0
	for _, r := range audit {
		if r.Action == "draft.approve" && r.Actor == "user:"+approver {
			approvals++
		}
	}
	if approvals != 2 {
		t.Errorf("audit names %d approvals by %s, want 2", approvals, approver)
	}

	// The operator plays it now: it airs on tk-1, and the log says who approved it.
	c.signOut()
	c.signInAs("the operator of Tịnh Kỳ", operator)
	c.go_("playlists")
	play := `[...document.querySelectorAll("#playlists-list li[data-id]")].find((li) => li.querySelector(".title").textContent === "Họp dân")`
	c.step("play the approved playlist now to Tịnh Kỳ",
		c.until(`(`+play+`) && !(`+play+`).querySelector("button.play").hidden && !(`+play+`).textContent.includes("Chờ duyệt")`),
		chromedp.SetValue(chromedp.ID("playlist-area"), "tk"),
		chromedp.Evaluate[chromedp.Void](`(`+play+`).querySelector("button.play").click()`),
		c.until(`document.querySelector("#msg").textContent.includes("Đang phát Họp dân tới 1 thiết bị")`))
	var sessions []loa.Session
	if err := s.api.JSON(bg, "GET", "/api/v1/sessions", nil, &sessions); err != nil {
		t.Fatal(err)
	}
	var sess loa.Session
	for _, x := range sessions {
		if x.CreatedBy == "user:"+operator && x.PlaylistID != "" && (sess.ID == "" || x.StartedAt.After(sess.StartedAt)) {
			sess = x
		}
	}
	if sess.ID == "" {
		t.Fatal("no session of the approved playlist")
	}
	loatest.Eventually(t, loatest.Wait, func() bool {
		st, ok := s.rx["tk-1"].Session(sess.ID)
		return ok && st.Played > 0
	}, "tk-1 plays the approved playlist")
	var log []loa.PlayLogEntry
	if err := s.api.JSON(bg, "GET", "/api/v1/playlog?limit=50", nil, &log); err != nil {
		t.Fatal(err)
	}
	named := false
	for _, e := range log {
		if e.SessionID == sess.ID && e.Event == loa.PlayStarted {
			named = strings.Contains(e.Detail, "approved by user:"+approver)
		}
	}
	if !named {
		t.Errorf("the play log's started line of %s names no approval by %s", sess.ID, approver)
	}
	c.go_("log")
	c.step("the broadcast log names the approval",
		c.until(fmt.Sprintf(`document.querySelector("#log-list").textContent.includes(%q)`, "approved by user:"+approver)))
	// Leave nothing playing for the next job.
	_ = s.api.JSON(bg, "POST", "/api/v1/sessions/"+sess.ID+"/stop", nil, nil)
}

// reviveTK1 boots Tịnh Kỳ's receiver again (OverviewLive killed it)
// until the job ends, when it is killed again and the
// station knows it offline, as the job found it.
func reviveTK1(t *testing.T, s *capSystem) {
	bg := context.Background()
	if st, ok := s.m.Fleet.DeviceState("tk-1"); ok && st.Online {
		return
	}
	r := firmwaresim.NewReceiver(s.cfgs["tk-1"]) // as it was set up: later jobs start it the same way
	if err := r.Start(bg); err != nil {
		t.Fatal(err)
	}
	online := func(want bool) func() bool {
		return func() bool { st, ok := s.m.Fleet.DeviceState("tk-1"); return ok && st.Online == want }
	}
	loatest.Eventually(t, loatest.Wait, online(true), "tk-1 online again")
	old := s.rx["tk-1"]
	s.rx["tk-1"] = r
	t.Cleanup(func() {
		r.Kill()
		s.rx["tk-1"] = old
		loatest.Eventually(t, loatest.Wait, online(false), "tk-1 offline again")
	})
}
