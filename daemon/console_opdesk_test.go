package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
)

// The operator's desk and the province's alert desk (issue 10): the
// media library, the broadcast log and its export, the alert desk.
func init() {
	consoleParts = append(consoleParts,
		consolePart{"OperatorMediaLibrary", opdesk(consoleMediaLibrary)},
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
		c := *f.c
		c.ctx = ctx
		g := *f
		g.c = &c
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
	c.signInAs("operator", f.operator)
	c.go_("media")
	c.step("upload a file",
		chromedp.SendKeys(chromedp.ID("upload-name"), "Tin văn nghệ"),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		c.until(`[...document.querySelectorAll("#media-list li[data-id] .title")].some((e) => e.textContent === "Tin văn nghệ")`))
	id := c.evalString(`[...document.querySelectorAll("#media-list li[data-id]")].find((li) => li.querySelector(".title").textContent === "Tin văn nghệ").dataset.id`)
	item := fmt.Sprintf(`#media-list li[data-id=%q]`, id)
	if meta := c.text(item + " .meta"); !strings.Contains(meta, "0:02") || !strings.Contains(meta, "LUFS") {
		t.Errorf("the item's duration and loudness: %q", meta)
	}

	c.step("listen to it in the browser",
		chromedp.Click(chromedp.CSS(item+" button.listen")),
		c.until(`(() => { const a = document.querySelector(`+quoteJS(item+" audio")+`); return a.readyState >= 2 || a.duration > 0; })()`))
	if d := c.evalString(`String(document.querySelector(` + quoteJS(item+" audio") + `).duration)`); !strings.HasPrefix(d, "1.") {
		t.Errorf("the player's duration: %s s, want about 1.5", d)
	}

	c.step("rename it",
		centre(item),
		chromedp.Click(chromedp.CSS(item+" details.edit summary")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+quoteJS("#media-"+id+"-name")+`).value = ""`),
		chromedp.SendKeys(chromedp.ID("media-"+id+"-name"), "Tin văn nghệ tối"),
		chromedp.Click(chromedp.CSS(item+" button.rename")),
		c.until(`document.querySelector(`+quoteJS(item+" .title")+`).textContent === "Tin văn nghệ tối"`))
	var m loa.Media
	if err := s.api.JSON(bg, "GET", "/api/v1/media/"+id, nil, &m); err != nil || m.Name != "Tin văn nghệ tối" {
		t.Errorf("after renaming, the library has %+v, %v", m, err)
	}

	// The morning news is in the schedule "Chương trình sáng": it stays.
	news := fmt.Sprintf(`#media-list li[data-id=%q]`, f.news.ID)
	c.step("try to delete an item the schedule uses",
		centre(news),
		chromedp.Click(chromedp.CSS(news+" details.edit summary")),
		chromedp.Click(chromedp.CSS(news+" button.delete")),
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
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		c.until(`!document.querySelector("#upload-note").hidden`))
	if got := c.text("#upload-note"); !strings.Contains(got, "đã có trong thư viện với tên “Tin văn nghệ tối”") {
		t.Errorf("the duplicate upload says %q", got)
	}
	if c.evalBool(`[...document.querySelectorAll("#media-list .title")].some((e) => e.textContent === "Bản sao")`) {
		t.Error("the duplicate shows as a new item")
	}
	c.step("delete the unused one",
		centre(item),
		chromedp.Click(chromedp.CSS(item+" button.delete")),
		c.until(`document.querySelector(`+quoteJS(item)+`) === null`))
	if err := s.api.JSON(bg, "GET", "/api/v1/media/"+id, nil, nil); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("after deleting, the item is still there: %v", err)
	}

}

// centre scrolls the element sel to the middle of the window, clear of
// the message box at the bottom.
func centre(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + quoteJS(sel) + `).scrollIntoView({block: "center"})`)
}

// quoteJS quotes s as a JavaScript string.
func quoteJS(s string) string { return fmt.Sprintf("%q", s) }
