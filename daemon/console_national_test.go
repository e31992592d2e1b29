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

	// A province of its own over HTTPS, which binds the national
	// certificate (the shared controller serves no HTTPS).
	pcfg := testConfig(t)
	pcfg.TLS.HTTPSAddr = "127.0.0.1:0"
	prov := openMain(t, pcfg)
	defer prov.Close()
	pc := api.NewClient(prov.URL(), prov.AdminToken)
	if err := pc.CreateArea(bg, loa.Area{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince, Code: "01"}); err != nil {
		t.Fatal(err)
	}
	if err := pc.CreateArea(bg, loa.Area{ID: "ba", ParentID: "hn", Name: "Xã Ba Vì", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDevice(bg, loa.Device{ID: "ba-1", AreaID: "ba", Name: "ba-1"}); err != nil {
		t.Fatal(err)
	}
	var id loa.NationalIdentity
	if err := api.NewClient(nat.URL(), nat.AdminToken).JSON(bg, "GET", "/api/v1/national/identity", nil, &id); err != nil {
		t.Fatal(err)
	}
	if err := pc.JSON(bg, "POST", "/api/v1/tokens", map[string]any{"name": "Trung ương", "role": "province", "area_id": "hn",
		"cap_senders": []string{id.Sender}, "client_cert_sha256": id.CertSHA256}, nil); err != nil {
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
	n.step("and one that answers",
		chromedp.SendKeys(chromedp.ID("province-id"), "hn"),
		chromedp.SendKeys(chromedp.ID("province-code"), "01"),
		chromedp.SendKeys(chromedp.ID("province-name"), "Hà Nội"),
		chromedp.SendKeys(chromedp.ID("province-url"), prov.HTTPSURL()),
		chromedp.SetValue(chromedp.ID("province-ca"), string(prov.CACertPEM())),
		chromedp.Click(chromedp.ID("province-save")),
		n.until(`document.querySelector("#national-target-hn") !== null`))
	n.step("an alert to both",
		chromedp.SendKeys(chromedp.ID("national-title"), "Bão số 9"),
		chromedp.SetValue(chromedp.ID("national-level"), loa.AlertPriority),
		chromedp.SendKeys(chromedp.ID("national-text"), "Bão số 9 đổ bộ, người dân ở trong nhà."),
		chromedp.Click(chromedp.ID("national-target-qn")),
		chromedp.Click(chromedp.ID("national-target-hn")),
		chromedp.Click(chromedp.ID("national-send")),
		n.until(`(() => { const card = document.querySelector("#national-alerts li.national-alert");
			const q = card && card.querySelector(".push[data-province='qn']"), h = card && card.querySelector(".push[data-province='hn']");
			return q && q.classList.contains("unreachable") && q.querySelector(".reason").textContent !== "" && /\d/.test(q.querySelector(".state").textContent) &&
				h && h.classList.contains("delivered") && h.querySelector(".communes li[data-id='ba']") !== null &&
				h.querySelector(".communes li[data-id='ba']").textContent.includes("Xã Ba Vì"); })()`))
	n.check("national")
	// Cancelled from the card: Hà Nội is told and cancels its alert.
	n.step("cancel it",
		chromedp.Click(chromedp.CSS("#national-alerts li.national-alert button.cancel")),
		n.until(`(() => { const card = document.querySelector("#national-alerts li.national-alert");
			const h = card.querySelector(".push[data-province='hn']");
			return !card.querySelector(".cancelled").hidden && card.querySelector("button.cancel").hidden && h.classList.contains("delivered") &&
				h.querySelector(".state").textContent.includes("tỉnh đã huỷ"); })()`))
	var alerts []loa.NationalAlert
	if err := api.NewClient(nat.URL(), nat.AdminToken).JSON(bg, "GET", "/api/v1/national/alerts", nil, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("national alerts %+v %v", alerts, err)
	}
	for _, p := range alerts[0].Provinces {
		if p.AlertID == "" {
			continue
		}
		var pa loa.Alert
		if err := pc.JSON(bg, "GET", "/api/v1/alerts/"+p.AlertID, nil, &pa); err != nil || pa.State != loa.AlertCancelled {
			t.Errorf("the province's alert after the national cancel: %s %v", pa.State, err)
		}
	}
	n.signOut()
	c.signInAs("admin", f.admin) // the next job signs out of the shared controller
}
