package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/loa-broadcast/loa"
)

func init() { consoleParts = append(consoleParts, consolePart{"Reports", consoleReports}) }

// consoleReports: the commune operator opens the reports, sees only the
// commune, is told a wrong date in words, shows this month's report with
// the commune's receivers and downloads the PDF and the workbook; the
// province sees one line per commune (station/reports_test.go checks the
// numbers themselves).
func consoleReports(t *testing.T, f *consoleFixture) {
	c := f.c
	vn, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		t.Fatal(err)
	}
	thisMonth := time.Now().In(vn).Format("2006-01")

	c.signOut()
	c.signInAs("operator", f.operator)
	c.go_("reports")
	c.step("the operator's reports",
		c.until(`document.querySelector("#reports-summary")`),
		c.until(`document.querySelectorAll("#reports-area option").length === 1 && document.querySelector("#reports-area").value === "bc"`))
	c.step("a wrong date is named",
		chromedp.SendKeys(chromedp.ID("reports-from"), "32/13/2026"),
		chromedp.SendKeys(chromedp.ID("reports-to"), "01/01/2027"),
		chromedp.Click(chromedp.ID("reports-show")),
		c.until(`!document.querySelector("#reports-from-error").hidden && document.querySelector("#reports-from").getAttribute("aria-invalid") === "true"`))
	c.step("this month's report",
		chromedp.SendKeys(chromedp.ID("reports-from"), kb.End+strings.Repeat(kb.Backspace, 10)),
		chromedp.SendKeys(chromedp.ID("reports-to"), kb.End+strings.Repeat(kb.Backspace, 10)),
		c.until(`document.querySelector("#reports-from").value === "" && document.querySelector("#reports-to").value === ""`),
		chromedp.SetValue(chromedp.ID("reports-month"), thisMonth),
		chromedp.Click(chromedp.ID("reports-show")),
		c.until(`document.querySelector("#reports-summary h2").textContent.startsWith("Xã Bình Châu")`),
		// bc-1 and bc-2, and any receiver an earlier job added to the commune.
		c.until(`["bc-1", "bc-2"].every((id) => [...document.querySelectorAll("#reports-receivers li.card .title")].some((e) => e.textContent === id))`),
		c.until(`![...document.querySelectorAll("#reports-receivers li.card .title")].some((e) => /^(tk|na|sh)-/.test(e.textContent))`),
		c.until(`document.querySelector("#reports-villages li.card .title").textContent === "Xã Bình Châu"`))
	if href := c.evalString(`document.querySelector("#reports-pdf").getAttribute("href")`); href != "/api/v1/reports/broadcast?area=bc&month="+thisMonth+"&format=pdf" {
		t.Errorf("the PDF link is %q", href)
	}
	for sel, magic := range map[string]string{"#reports-pdf": "%PDF", "#reports-xlsx": "PK\x03\x04", "#reports-csv": "\uFEFFBÁO"} {
		got := c.evalAwait(`fetch(document.querySelector("` + sel + `").href).then((r) => r.arrayBuffer()).then((b) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array(b).slice(0, 8)))`)
		if len(got) < len(magic) || got[:len(magic)] != magic {
			t.Errorf("%s downloads %q, want it to start %q", sel, got, magic)
		}
	}

	c.signOut()
	c.signInAs("province", f.province)
	c.go_("reports")
	c.step("the province's report",
		c.until(`document.querySelector("#reports-area").value === "qn"`),
		chromedp.SetValue(chromedp.ID("reports-month"), thisMonth),
		chromedp.Click(chromedp.ID("reports-show")),
		c.until(`document.querySelectorAll("#reports-communes li.card").length === 4`),
		c.until(`document.querySelector("#reports-summary h2").textContent.startsWith("Tỉnh Quảng Ngãi")`))
	c.check("reports")
}
