package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
)

func init() { consoleParts = append(consoleParts, consolePart{"Bulletins", consoleBulletins}) }

// consoleBulletins: province staff publish an ưu tiên bulletin to Bình
// Châu and Tịnh Kỳ and see both waiting; Bình Châu's operator sees the
// count beside the navigation link, finds it in the inbox and schedules
// it in two hours; the tracking says so.
func consoleBulletins(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()

	c.signOut()
	c.signInAs("province staff", f.province)
	c.go_("bulletins")
	c.step("publish an ưu tiên bulletin to two communes",
		chromedp.SendKeys(chromedp.ID("bulletin-title"), "Lịch cắt điện tuần này"),
		chromedp.SendKeys(chromedp.ID("bulletin-category"), "điện lực"),
		chromedp.SetValue(chromedp.ID("bulletin-level"), "priority"),
		chromedp.SetValue(chromedp.ID("bulletin-media"), f.news.ID),
		chromedp.Click(chromedp.ID("bulletin-area-bc")),
		chromedp.Click(chromedp.ID("bulletin-area-tk")),
		chromedp.Click(chromedp.ID("bulletin-send")),
		c.until(`document.querySelector("#msg").textContent.includes("Đã gửi bản tin Lịch cắt điện tuần này tới 2 xã")`),
		c.until(`[...document.querySelectorAll("#bulletins-list li[data-id]")].some((li) => li.textContent.includes("2 xã: 2 chờ xử lý"))`))
	var list []loa.Bulletin
	if err := s.api.JSON(bg, "GET", "/api/v1/bulletins", nil, &list); err != nil {
		t.Fatal(err)
	}
	var b loa.Bulletin
	for _, x := range list {
		if x.Title == "Lịch cắt điện tuần này" {
			b = x
		}
	}
	if b.Level != loa.BulletinPriority || b.MediaID != f.news.ID || b.MustAirBy.IsZero() || len(b.Communes) != 2 {
		t.Fatalf("published %+v", b)
	}
	t.Cleanup(func() { _ = s.api.JSON(bg, "DELETE", "/api/v1/schedules/"+b.ID+"-bc", nil, nil) })
	c.check("bulletins")

	c.signOut()
	// An operator of its own: earlier jobs may disable the fixture's.
	c.signInAs("the operator of Bình Châu", f.user("cb-bantin-bc", "Cán bộ bản tin Bình Châu", loa.RoleOperator, "bc"))
	c.step("the count of waiting bulletins in the navigation",
		c.until(`document.querySelector("#nav a[href='#/bulletins'] #bulletins-badge") && !document.querySelector("#bulletins-badge").hidden && document.querySelector("#bulletins-badge").textContent === "1"`))
	c.go_("bulletins")
	key := "bl-" + b.ID + "-bc"
	c.step("the inbox shows it with its decision",
		c.until(fmt.Sprintf(`document.querySelector("#bulletins-inbox li[data-id='%s'] form.decision")`, b.ID)),
		c.until(fmt.Sprintf(`document.querySelector("#bulletins-inbox li[data-id='%s']").textContent.includes("Ưu tiên")`, b.ID)))
	if c.evalBool(`document.querySelector("#bulletin-form") !== null`) {
		t.Error("a commune operator is offered to publish")
	}
	c.check("bulletins-inbox")
	zone, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		t.Fatal(err)
	}
	// In two hours, within its 24 hours of validity, as the station's
	// clock says.
	at := time.Now().In(zone).Add(2 * time.Hour).Truncate(time.Minute)
	day, hm := at.Format(time.DateOnly), at.Format("15:04")
	c.step("schedule it in two hours",
		chromedp.SetValue(chromedp.ID(key+"-how"), "schedule"),
		chromedp.SetValue(chromedp.ID(key+"-date"), day),
		chromedp.SetValue(chromedp.ID(key+"-time"), hm),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[data-key=%q] button.accept`, key))),
		c.until(`document.querySelector("#msg").textContent.includes("Đã nhận bản tin Lịch cắt điện tuần này cho")`),
		c.until(fmt.Sprintf(`document.querySelector("#bulletins-inbox li[data-id='%s'] form.decision").hidden && document.querySelector("#bulletins-inbox li[data-id='%s']").textContent.includes("Đã lên lịch")`, b.ID, b.ID)),
		c.until(`document.querySelector("#bulletins-badge").hidden`))

	var got loa.Bulletin
	if err := s.api.JSON(bg, "GET", "/api/v1/bulletins/"+b.ID, nil, &got); err != nil {
		t.Fatal(err)
	}
	bc, tk := got.Commune("bc"), got.Commune("tk")
	if bc == nil || bc.State != loa.BulletinScheduled || bc.How != loa.AcceptSchedule || !bc.At.Equal(at) || tk == nil || tk.State != loa.BulletinReceived {
		t.Errorf("tracking after the operator's decision: %+v", got.Communes)
	}
	var sc loa.Schedule
	if err := s.api.JSON(bg, "GET", "/api/v1/schedules/"+bc.ScheduleID, nil, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Content.MediaID != f.news.ID || sc.Rule.Kind != loa.RuleOnce || sc.Rule.Date != day || sc.Rule.Time != hm+":00" {
		t.Errorf("the schedule it made: %+v", sc)
	}
}
