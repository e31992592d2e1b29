package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
)

func init() { consoleParts = append(consoleParts, consolePart{"Notify", consoleNotify}) }

// consoleNotify: province staff add a notification rule for Bình Châu
// (offline receivers: the technician by e-mail, then themselves by SMS),
// see its chain in words, disable and delete it. The admin sets their own
// contact details, then opens a notification's link (a station alarm
// escalating to them) and acknowledges it there: the alarm is marked and
// the escalation ends.
func consoleNotify(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()

	c.signOut()
	c.signInAs("province staff", f.province)
	c.go_("notify")
	c.step("a rule with a chain of two",
		chromedp.SendKeys(chromedp.ID("notify-name"), "Loa Bình Châu mất kết nối"),
		chromedp.SetValue(chromedp.ID("notify-area"), "bc"),
		chromedp.Click(chromedp.CSS(`#notify-kinds input[value="offline"]`)),
		chromedp.SetValue(chromedp.ID("notify-after"), "5"),
		chromedp.SendKeys(chromedp.ID("notify-step-0-user"), f.technician),
		chromedp.Click(chromedp.ID("notify-step-add")),
		chromedp.SendKeys(chromedp.ID("notify-step-1-user"), f.province),
		chromedp.Click(chromedp.ID("notify-submit")),
		c.until(`document.querySelector("#msg").textContent.includes("Đã thêm quy tắc Loa Bình Châu mất kết nối")`),
		c.until(`[...document.querySelectorAll("#notify-rules li[data-id]")].some((li) => li.textContent.includes("Loa Bình Châu mất kết nối") &&
			li.textContent.includes("Mất kết nối") && li.textContent.includes("`+f.technician+` — Thư điện tử, sau 0 phút") &&
			li.textContent.includes("`+f.province+` — Tin nhắn SMS, sau 15 phút") && li.textContent.includes("Đang bật"))`))
	var rules []loa.NotifyRule
	if err := s.api.JSON(bg, "GET", "/api/v1/notify/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].AreaID != "bc" || rules[0].AfterMinutes != 5 || len(rules[0].AlarmKinds) != 1 ||
		len(rules[0].Chain) != 2 || rules[0].Chain[1].Channel != loa.ChannelSMS {
		t.Fatalf("rules %+v", rules)
	}
	c.step("a chain naming nobody is refused next to its field",
		chromedp.SetValue(chromedp.ID("notify-step-0-user"), "khong-co-ai"),
		chromedp.Click(chromedp.ID("notify-submit")),
		c.until(`!document.querySelector("#notify-step-0-user-error").hidden`))
	c.check("notify")
	c.step("disabled, then deleted",
		chromedp.Click(chromedp.CSS(`#notify-rules li[data-id] button.toggle`)),
		c.until(`document.querySelector("#notify-rules li[data-id] .state").textContent === "Đã tắt"`),
		chromedp.Click(chromedp.CSS(`#notify-rules li[data-id] button.delete`)),
		c.until(`document.querySelectorAll("#notify-rules li[data-id]").length === 0`))

	c.signOut()
	c.signInAs("the admin", f.admin)
	c.go_("contact")
	c.step("the admin's own contact details",
		chromedp.SendKeys(chromedp.ID("contact-email"), "quantri@quangngai.example.vn"),
		chromedp.SendKeys(chromedp.ID("contact-phone"), "+84912000111"),
		chromedp.Click(chromedp.ID("contact-submit")),
		c.until(`document.querySelector("#msg").textContent.includes("Đã lưu thông tin liên hệ")`))
	c.check("contact")
	var admin loa.User
	if err := s.api.JSON(bg, "GET", "/api/v1/users/"+f.admin, nil, &admin); err != nil || admin.Email != "quantri@quangngai.example.vn" || admin.Phone != "+84912000111" {
		t.Errorf("admin %+v, %v", admin, err)
	}

	// A station alarm escalating to the admin (no channel is configured
	// here: the step logs a failure, the link is the same).
	var rule loa.NotifyRule
	if err := s.api.JSON(bg, "POST", "/api/v1/notify/rules", map[string]any{"event": "alarm", "alarm_kinds": []string{loa.AlarmClockStep},
		"chain": []map[string]any{{"username": f.admin, "channel": "email", "after_minutes": 600}}}, &rule); err != nil {
		t.Fatal(err)
	}
	defer s.api.JSON(bg, "DELETE", "/api/v1/notify/rules/"+rule.ID, nil, nil)
	s.m.Alarms.RaiseStation(loa.AlarmClockStep, loa.SeverityWarning, 120, 1, "the console's notification test")
	defer s.m.Alarms.ClearStation(loa.AlarmClockStep, "the console's notification test ended")
	if err := s.m.Notifier.Round(bg); err != nil {
		t.Fatal(err)
	}
	escs, err := s.m.DB.NotifyEscalations(bg)
	if err != nil || len(escs) != 1 {
		t.Fatalf("escalations %+v, %v", escs, err)
	}
	token := s.m.Notifier.AckToken(escs[0].ID)
	c.step("the link's page",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/ack/`+token+`"`),
		c.until(`document.querySelector("#ack-form") !== null`))
	c.check("ack")
	c.step("acknowledged from the link",
		chromedp.SendKeys(chromedp.ID("ack-note"), "đã kiểm tra NTP"),
		chromedp.Click(chromedp.ID("ack-submit")),
		c.until(`!document.querySelector("#ack-done").hidden && document.querySelector("#ack-done").textContent.includes("Đồng hồ máy chủ bị chỉnh")`))
	var alarms []loa.Alarm
	if err := s.api.JSON(bg, "GET", "/api/v1/alarms?active=true&kind=clock_step", nil, &alarms); err != nil {
		t.Fatal(err)
	}
	if len(alarms) != 1 || alarms[0].Ack == nil || !strings.Contains(alarms[0].Ack.Note, "đã kiểm tra NTP") || alarms[0].Ack.By != "user:"+f.admin {
		t.Errorf("alarms %+v", alarms)
	}
	if err := s.m.Notifier.Round(bg); err != nil {
		t.Fatal(err)
	}
	if escs, _ := s.m.DB.NotifyEscalations(bg); len(escs) != 0 {
		t.Errorf("the escalation goes on after the acknowledgement: %+v", escs)
	}
	c.step("a spent link says so",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/overview"`),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/ack/`+token+`"`),
		c.until(`document.querySelector("#ack-form") !== null`),
		chromedp.Click(chromedp.ID("ack-submit")),
		c.until(`!document.querySelector("#ack-error").hidden && document.querySelector("#ack-error").textContent.includes("Thông báo này đã kết thúc")`))
}
