package daemon

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

func init() { consoleParts = append(consoleParts, consolePart{"National", consoleNational}) }

// consoleNational: "Cảnh báo toàn quốc" shows on a national controller
// only. There its admin registers a province by the form (an http:// URL
// is refused next to the field), sends an alert to it, and sees the
// province's push live on the alert card: unreachable (nothing answers at
// its address), with the reason and the tries. A second controller of
// the same binary (-national) is opened on "localhost", so its sign-in
// cookie stays apart from the shared controller's (127.0.0.1).
func consoleNational(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	cfg := testConfig(t)
	cfg.National, cfg.CAPSender = true, "canhbao.gov.vn"
	nat := openMain(t, cfg)
	defer nat.Close()
	if err := api.NewClient(nat.URL(), nat.AdminToken).JSON(bg, "POST", "/api/v1/users", map[string]string{
		"username": "quoc-gia", "name": "Trung tâm quốc gia", "role": "admin", "password": consolePassword}, nil); err != nil {
		t.Fatal(err)
	}

	// The shared controller is a province: no national screen.
	c.signOut()
	c.signInAs("admin", f.admin)
	if c.evalBool(`document.querySelector("#nav a[href='#/national']") !== null`) {
		t.Error("a province controller shows the national screen")
	}
	c.signOut()

	_, port, err := net.SplitHostPort(strings.TrimPrefix(nat.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n := *c
	n.url = "http://localhost:" + port
	n.signInAs("the national admin", "quoc-gia")
	n.go_("national")
	n.step("the identity provinces bind",
		n.until(`document.querySelector("#national-identity").textContent.includes("canhbao.gov.vn")`))
	// Nothing listens there: a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + ln.Addr().String()
	ln.Close()
	n.step("a plain http:// province is refused at its field",
		chromedp.SendKeys(chromedp.ID("province-id"), "qn"),
		chromedp.SendKeys(chromedp.ID("province-code"), "51"),
		chromedp.SendKeys(chromedp.ID("province-name"), "Quảng Ngãi"),
		chromedp.SendKeys(chromedp.ID("province-url"), "http://loa.quangngai.gov.vn"),
		chromedp.SetValue(chromedp.ID("province-ca"), string(s.m.CACertPEM())),
		chromedp.Click(chromedp.ID("province-save")),
		n.until(`!document.getElementById("province-url-error").hidden`))
	n.step("the province added",
		chromedp.SetValue(chromedp.ID("province-url"), dead),
		chromedp.Click(chromedp.ID("province-save")),
		n.until(`[...document.querySelectorAll("#provinces-list li.province .title")].some((e) => e.textContent === "Quảng Ngãi") && document.querySelector("#national-target-qn") !== null`))
	n.step("an alert to it",
		chromedp.SendKeys(chromedp.ID("national-title"), "Bão số 9"),
		chromedp.SetValue(chromedp.ID("national-level"), loa.AlertEmergency),
		chromedp.SendKeys(chromedp.ID("national-text"), "Bão số 9 đổ bộ, người dân ở trong nhà."),
		chromedp.Click(chromedp.ID("national-target-qn")),
		chromedp.Click(chromedp.ID("national-send")),
		n.until(`(() => { const r = document.querySelector("#national-alerts li.national-alert .push[data-province='qn']");
			return r && r.classList.contains("unreachable") && r.querySelector(".reason").textContent !== "" && /\d/.test(r.querySelector(".state").textContent); })()`))
	n.check("national")
	n.signOut()
	c.signInAs("admin", f.admin) // the next job signs out of the shared controller
}
