package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
)

func init() { consoleParts = append(consoleParts, consolePart{"Calendar", consoleCalendar}) }

// consoleCalendar: the commune operator schedules the 06:00 and 17:00
// news on weekdays from next Monday, skipping the commune's holiday (a
// calendar the admin keeps: operators may not), sees them on next week's
// calendar on every weekday but the holiday, is warned of the overlap
// before saving a third programme at 06:00, edits one, replaces one date
// of another and deletes one, by clicks and typing.
func consoleCalendar(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	vn, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := time.Now().In(vn).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	monday := today.AddDate(0, 0, -(int(today.Weekday())+6)%7)
	day := func(i int) string { return monday.AddDate(0, 0, 7+i).Format(time.DateOnly) } // next week's: 0 Monday … 6 Sunday
	dmy := func(i int) string { return monday.AddDate(0, 0, 7+i).Format("02/01/2006") }
	holiday := day(2) // next Wednesday

	// An earlier job may have disabled the operator; the admin keeps the
	// commune's holidays.
	if err := s.api.JSON(bg, "POST", "/api/v1/users/"+f.operator+"/enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	const calName = "Ngày nghỉ Bình Châu"
	calPath := "/api/v1/calendars/" + url.PathEscape(calName)
	if err := s.api.JSON(bg, "PUT", calPath, map[string]any{"dates": []string{holiday}, "area_id": "bc"}, nil); err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{"Bản tin sáng": true, "Bản tin chiều": true, "Thông báo tiêm chủng": true}
	defer func() { // no holiday and none of these schedules for later jobs
		if err := s.api.JSON(bg, "PUT", calPath, map[string]any{"dates": []string{}}, nil); err != nil {
			t.Error(err)
		}
		var list []loa.Schedule
		if err := s.api.JSON(bg, "GET", "/api/v1/schedules", nil, &list); err != nil {
			t.Error(err)
		}
		for _, sc := range list {
			if strings.HasPrefix(sc.ID, "lich-") && made[sc.Name] {
				if err := s.api.JSON(bg, "DELETE", "/api/v1/schedules/"+sc.ID, nil, nil); err != nil {
					t.Error(err)
				}
			}
		}
	}()

	c.signOut()
	c.signInAs("operator", f.operator)
	c.go_("calendar")
	occs := func(name string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#cal-grid button.occ[data-name='%s']")].map((b) => b.dataset.date.slice(5) + " " + b.dataset.time).sort().join(", ")`, name)
	}
	want := func(name, at string, days ...int) string {
		var w []string
		for _, i := range days {
			w = append(w, day(i)[5:]+" "+at)
		}
		return fmt.Sprintf("%s === %q", occs(name), strings.Join(w, ", "))
	}
	slot := func(i int, at string) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.CSS(fmt.Sprintf(`#cal-grid button.slot[data-date='%s'][data-time='%s']`, day(i), at)))
	}
	occ := func(name string, i int) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.CSS(fmt.Sprintf(`#cal-grid button.occ[data-name='%s'][data-date='%s']`, name, day(i))))
	}
	opened := c.until(`document.querySelector("#cal-dialog").open`)
	closed := c.until(`!document.querySelector("#cal-dialog").open`)
	// toWeek shows next week: one press on "next week" (none if midnight
	// between Sunday and Monday passed since the test began).
	toWeek := func() {
		c.t.Helper()
		c.step("this week", c.until(`(document.querySelector("#cal-grid") || {dataset: {}}).dataset.week >= `+strconv.Quote(monday.Format(time.DateOnly))))
		if c.evalString(`(document.querySelector("#cal-grid") || {dataset: {}}).dataset.week`) < day(0) {
			c.step("next week", chromedp.Click(chromedp.ID("cal-next")))
		}
		c.step("next week shown", c.until(fmt.Sprintf(`(document.querySelector("#cal-grid") || {dataset: {}}).dataset.week === %q`, day(0))))
	}
	toWeek()
	c.step("next week with its holiday",
		c.until(fmt.Sprintf(`document.querySelector("#cal-week-title").textContent === "Tuần %s – %s"`, dmy(0), dmy(6))),
		c.until(fmt.Sprintf(`document.querySelector("#cal-grid thead th[data-date='%s'] .holiday").textContent === "Ngày nghỉ: %s"`, holiday, calName)))

	add := func(name string, i int, at string) {
		c.t.Helper()
		c.step("add "+name+" from a free slot",
			slot(i, at), opened,
			c.until(fmt.Sprintf(`document.querySelector("#cal-time").value === %q && document.querySelector("#cal-from").value === %q && document.querySelector("#cal-kind").value === "weekdays" && document.querySelector("#cal-area-bc").checked`, at, dmy(i))),
			chromedp.SendKeys(chromedp.ID("cal-name"), name),
			chromedp.SetValue(chromedp.ID("cal-content"), "m:"+f.news.ID),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#cal-skip input[value=%q]`, calName))),
			chromedp.Click(chromedp.ID("cal-save")), closed)
	}
	add("Bản tin sáng", 0, "06:00")
	c.step("on every weekday but the holiday",
		c.until(want("Bản tin sáng", "06:00", 0, 1, 3, 4)))
	add("Bản tin chiều", 0, "17:00")
	c.step("both on every weekday but the holiday",
		c.until(want("Bản tin chiều", "17:00", 0, 1, 3, 4)),
		c.until(`document.querySelector("#cal-schedules").textContent.includes("Thứ Hai – thứ Sáu lúc 17:00")`))
	c.check("calendar")

	c.step("a third at 06:00: a time that is not HH:MM is refused next to its field, then the overlap is shown before it is saved",
		slot(1, "06:00"), opened,
		chromedp.SendKeys(chromedp.ID("cal-name"), "Thông báo tiêm chủng"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#cal-time").value = ""`),
		chromedp.SendKeys(chromedp.ID("cal-time"), "6 giờ"),
		chromedp.Click(chromedp.ID("cal-save")),
		c.until(`!document.querySelector("#cal-time-error").hidden && document.querySelector("#cal-time-error").textContent.startsWith("Giờ phải có dạng HH:MM")`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#cal-time").value = ""`),
		chromedp.SendKeys(chromedp.ID("cal-time"), "06:00"),
		chromedp.Click(chromedp.ID("cal-save")),
		c.until(`!document.querySelector("#cal-conflicts").hidden`),
		c.until(fmt.Sprintf(`document.querySelector("#cal-conflicts").textContent.includes("Trùng với Bản tin sáng lúc 06:00 thứ Ba %s")`, dmy(1))),
		c.until(`document.querySelector("#cal-save").textContent === "Vẫn lưu" && document.querySelector("#cal-dialog").open`))
	if got := c.evalString(occs("Thông báo tiêm chủng")); got != "" {
		t.Errorf("the overlapping programme is on the calendar before it was saved: %s", got)
	}
	c.check("calendar-form")
	c.step("saved anyway, it is on the calendar (the holiday too: it does not skip it)",
		chromedp.Click(chromedp.ID("cal-save")), closed,
		c.until(want("Thông báo tiêm chủng", "06:00", 1, 2, 3, 4)))

	c.step("move the evening news to 17:30",
		occ("Bản tin chiều", 0), opened,
		c.until(`document.querySelector("#cal-name").value === "Bản tin chiều"`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#cal-time").value = ""`),
		chromedp.SendKeys(chromedp.ID("cal-time"), "17:30"),
		chromedp.Click(chromedp.ID("cal-save")), closed,
		c.until(want("Bản tin chiều", "17:30", 0, 1, 3, 4)),
		c.until(fmt.Sprintf(`document.activeElement.matches("#cal-grid button.occ[data-name='Bản tin chiều'][data-date='%s']")`, day(0)))) // focus back on what was opened
	c.step("Thursday's morning news at 07:00, that day only",
		occ("Bản tin sáng", 3), opened,
		c.until(fmt.Sprintf(`document.querySelector("#cal-one-title").textContent === "Riêng buổi thứ Năm %s"`, dmy(3))),
		chromedp.SendKeys(chromedp.ID("cal-one-time"), "07:00"),
		chromedp.Click(chromedp.ID("cal-one-replace")), closed,
		c.until(occs("Bản tin sáng")+fmt.Sprintf(` === %q`, strings.Join([]string{day(0)[5:] + " 06:00", day(1)[5:] + " 06:00", day(3)[5:] + " 07:00", day(4)[5:] + " 06:00"}, ", "))),
		c.until(fmt.Sprintf(`document.querySelector("#cal-grid button.occ[data-name='Bản tin sáng'][data-date='%s']").textContent.includes("thay thế")`, day(3))))
	c.step("delete the third",
		occ("Thông báo tiêm chủng", 1), opened,
		chromedp.Click(chromedp.ID("cal-delete")), closed,
		c.until(occs("Thông báo tiêm chủng")+` === ""`))

	if c.evalBool(`document.querySelector("#cal-hol-form") !== null || document.querySelector("#cal-holidays") !== null`) {
		t.Error("the operator, who may not keep holiday calendars, is shown their editor")
	}

	// The province keeps the commune's holidays: next Friday is one too,
	// and the morning news, which skips them, goes from it.
	c.signOut()
	c.signInAs("province", f.province)
	c.go_("calendar")
	hol := fmt.Sprintf(`#cal-holidays li[data-id=%q]`, calName)
	toWeek()
	c.step("add next Friday to the commune's holidays",
		c.until(`document.querySelector(`+strconv.Quote(hol+" input[name=date]")+`) !== null`),
		chromedp.SendKeys(chromedp.CSS(hol+" input[name=date]"), dmy(4)),
		chromedp.Click(chromedp.CSS(hol+" button[type=submit]")),
		c.until(fmt.Sprintf(`document.querySelector("#cal-grid thead th[data-date='%s'] .holiday") !== null`, day(4))),
		c.until(occs("Bản tin sáng")+fmt.Sprintf(` === %q`, day(0)[5:]+" 06:00, "+day(1)[5:]+" 06:00, "+day(3)[5:]+" 07:00")))
	c.check("calendar-holidays")
	c.step("and remove it again",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s li[data-date='%s'] button.remove`, hol, day(4)))),
		c.until(fmt.Sprintf(`document.querySelector("#cal-grid thead th[data-date='%s'] .holiday") === null`, day(4))),
		c.until(fmt.Sprintf(`document.querySelector(%s).textContent.includes(%q)`, strconv.Quote(hol), dmy(2))))

	var list []loa.Schedule
	if err := s.api.JSON(bg, "GET", "/api/v1/schedules", nil, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]loa.Schedule{}
	for _, sc := range list {
		if strings.HasPrefix(sc.ID, "lich-") && made[sc.Name] {
			got[sc.Name] = sc
		}
	}
	if len(got) != 2 {
		t.Errorf("schedules made in the console: %v, want the morning and evening news", slices.Sorted(maps.Keys(got)))
	}
	for name, at := range map[string]string{"Bản tin sáng": "06:00", "Bản tin chiều": "17:30"} {
		sc := got[name]
		if r := sc.Rule; r.Kind != loa.RuleWeekly || r.Time != at || r.Date != day(0) || strings.Join(r.Weekdays, ",") != "mon,tue,wed,thu,fri" ||
			!slices.Equal(sc.Exceptions.Calendars, []string{calName}) || !slices.Equal(sc.Targets.Areas, []string{"bc"}) || sc.Content.MediaID != f.news.ID || !sc.Enabled {
			t.Errorf("%s as stored: %+v", name, sc)
		}
	}
	if rep, ok := got["Bản tin sáng"].Exceptions.Replace[day(3)]; !ok || rep.Time != "07:00" {
		t.Errorf("Thursday's replacement: %+v", got["Bản tin sáng"].Exceptions)
	}
}
