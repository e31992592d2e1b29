package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
)

func init() { consoleParts = append(consoleParts, consolePart{"Relays", consoleRelays}) }

// consoleRelays: the commune operator adds a relay on "Tiếp sóng" (a bad
// URL is refused next to the field), plays it now to the commune, sees its
// live state (the URL playing, the source's codec, its level) on the card,
// and deletes it once it has stopped; the technician may do none of it.
func consoleRelays(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	src := loatest.StartToneStream(t, 440)

	c.signOut()
	c.signInAs("operator", f.operator)
	c.go_("relays")
	c.step("a bad URL",
		chromedp.SendKeys(chromedp.ID("relay-name"), "Đài tỉnh"),
		chromedp.SendKeys(chromedp.ID("relay-urls"), "file:///etc/passwd"),
		chromedp.Click(chromedp.ID("relay-save")),
		c.until(`!document.getElementById("relay-urls-error").hidden`))
	c.step("add the relay",
		chromedp.SetValue(chromedp.ID("relay-urls"), src.URL()),
		chromedp.SetValue(chromedp.ID("relay-fallback"), f.news.ID),
		chromedp.Click(chromedp.ID("relay-save")),
		c.until(`[...document.querySelectorAll("#relays-list li.relay .title")].some((e) => e.textContent === "Đài tỉnh")`))
	var relays []struct {
		ID string `json:"id"`
	}
	if err := s.api.JSON(bg, "GET", "/api/v1/relays", nil, &relays); err != nil || len(relays) != 1 {
		t.Fatalf("relays: %+v %v", relays, err)
	}
	id := relays[0].ID
	card := fmt.Sprintf(`document.querySelector("#relays-list li[data-id='%s']")`, id)
	c.step("play it now to the commune",
		chromedp.SetValue(chromedp.ID("relay-area"), "bc"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#relays-list li[data-id='%s'] button.play`, id))),
		c.until(card+`.classList.contains("on-air") && `+card+`.querySelector(".state").textContent.includes(`+fmt.Sprintf("%q", src.URL())+`) && `+
			card+`.querySelector(".state").textContent.includes("mp3") && !`+card+`.querySelector(".state").textContent.includes("—")`))
	c.check("relays")

	all, err := s.m.Sessions.Sessions(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.State == loa.SessionPlaying && x.RelayID == id {
			if err := s.api.StopSession(bg, x.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The operator schedules it from the calendar (a year ahead, so it
	// never fires here), then the schedule goes.
	c.go_("calendar")
	c.step("schedule the relay from the calendar",
		chromedp.Click(chromedp.ID("cal-add")),
		c.until(`document.querySelector("#cal-dialog").open && [...document.querySelectorAll("#cal-content option")].some((o) => o.value === "r:`+id+`")`),
		chromedp.SendKeys(chromedp.ID("cal-name"), "Tiếp sóng đài tỉnh"),
		chromedp.SetValue(chromedp.ID("cal-content"), "r:"+id),
		chromedp.SetValue(chromedp.ID("cal-from"), time.Now().AddDate(1, 0, 0).Format("02/01/2006")),
		chromedp.Click(chromedp.ID("cal-save")),
		c.until(`!document.querySelector("#cal-dialog").open || !document.querySelector("#cal-conflicts").hidden`))
	if c.evalBool(`document.querySelector("#cal-dialog").open`) { // an overlap shown first: save anyway
		c.step("save despite the overlap", chromedp.Click(chromedp.ID("cal-save")), c.until(`!document.querySelector("#cal-dialog").open`))
	}
	c.step("listed as a relay", c.until(`document.querySelector("#cal-schedules").textContent.includes("Tiếp sóng: Đài tỉnh")`))
	var scheds []loa.Schedule
	if err := s.api.JSON(bg, "GET", "/api/v1/schedules", nil, &scheds); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sc := range scheds {
		if sc.Name == "Tiếp sóng đài tỉnh" {
			found = sc.Content.RelayID == id && sc.Content.MediaID == "" && sc.Content.PlaylistID == ""
			if err := s.api.JSON(bg, "DELETE", "/api/v1/schedules/"+sc.ID, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Errorf("no schedule of the relay %s from the calendar: %+v", id, scheds)
	}
	c.go_("relays")
	c.step("delete it once stopped",
		c.until(`!`+card+`.classList.contains("on-air")`),
		// By the keyboard: the note of the play may still cover the button.
		chromedp.Focus(chromedp.CSS(fmt.Sprintf(`#relays-list li[data-id='%s'] button.delete`, id))),
		chromedp.KeyEvent("\r"),
		c.until(`!`+card+` || !`+card+`.querySelector(".action-error").hidden`))
	if msg := c.evalString(`(` + card + ` || {textContent: ""}).textContent`); msg != "" {
		t.Errorf("the relay's card after deleting: %s", msg)
	}

	// The technician neither sees the screen nor may add a relay.
	c.signOut()
	c.signInAs("technician", f.technician)
	if !c.evalBool(`document.querySelector("#nav a[href='#/firmware']") !== null && document.querySelector("#nav a[href='#/relays']") === null`) {
		t.Error("the technician is shown the relays screen")
	}
	tech := api.NewClient(s.m.URL(), f.token("Kỹ thuật (máy)", "technician", "qn"))
	if err := tech.JSON(bg, "POST", "/api/v1/relays", map[string]any{"id": "x", "name": "x", "urls": []string{src.URL()}}, nil); !isStatus(err, 403) {
		t.Errorf("a technician added a relay: %v", err)
	}
}
