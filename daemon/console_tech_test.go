package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/devices"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func init() { consoleParts = append(consoleParts, consolePart{"Technician", consoleTechnician}) }

// consoleTechnician: the province's technician finds the offline receiver
// (tk-1, which lost power in OverviewLive) by the presence filter and a
// search, reads its health chart, sets an online receiver's volume (the
// simulated receiver plays at it), acknowledges an alarm with a note,
// uploads a signed image and rolls it out to tk-1 and na-2 in two waves,
// pausing while tk-1 is still off and resuming once it is back, to the end.
func consoleTechnician(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	s.rx["tk-1"].Kill() // already off after OverviewLive; Kill is idempotent
	c.signOut()
	c.signInAs("technician", f.technician)
	if !c.evalBool(`document.querySelector("#nav a[href='#/firmware']") !== null && document.querySelector("#nav a[href='#/alarms']") !== null`) {
		t.Error("the technician is not shown the firmware and alarms screens")
	}

	c.go_("devices")
	// Other jobs may leave more receivers off: tk-1 is one of them.
	c.step("the offline receivers",
		c.until(`document.querySelector("#devices-list li[data-id='bc-1']") !== null`),
		chromedp.SetValue(chromedp.ID("devices-state"), "offline"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#devices-state").dispatchEvent(new Event("change"))`),
		c.until(`document.querySelector("#devices-list li[data-id='bc-1']") === null && document.querySelector("#devices-list li[data-id='tk-1'] .state") !== null`),
		c.until(`[...document.querySelectorAll("#devices-list li[data-id] .state")].every((e) => e.textContent.includes("Mất kết nối"))`),
		c.until(`/^Đang hiện (\d+) \/ \1 thiết bị$/.test(document.querySelector("#devices-total").textContent)`))
	c.step("a search without case, among every state",
		chromedp.SetValue(chromedp.ID("devices-state"), ""),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#devices-state").dispatchEvent(new Event("change"))`),
		chromedp.SendKeys(chromedp.ID("devices-q"), "TK"),
		c.until(`document.querySelectorAll("#devices-list li[data-id]").length === 1 && document.querySelector("#devices-list li[data-id='tk-1']") !== null`))
	c.check("tech-devices")
	c.step("open its page: offline, with its health history drawn",
		chromedp.Click(chromedp.CSS(`#devices-list li[data-id='tk-1'] .title a`)),
		c.until(`location.hash === "#/device/tk-1" && document.querySelector("#device-id").textContent === "tk-1"`),
		c.until(`document.querySelector("#device-state").textContent.includes("Mất kết nối")`),
		c.until(`document.querySelectorAll("#chart-online svg circle").length >= 1 && document.querySelector("#chart-online polyline") !== null`))
	if got := c.text("#device-area"); got != "Phường Tịnh Kỳ" {
		t.Errorf("tk-1's area shows %q", got)
	}
	c.check("tech-device-offline")

	// An online receiver's volume, through its page.
	c.go_("devices")
	c.step("open bc-1's page",
		chromedp.SendKeys(chromedp.ID("devices-q"), "bc-1"),
		c.until(`document.querySelectorAll("#devices-list li[data-id]").length === 1 && document.querySelector("#devices-list li[data-id='bc-1']") !== null`),
		chromedp.Click(chromedp.CSS(`#devices-list li[data-id='bc-1'] .title a`)),
		c.until(`location.hash === "#/device/bc-1" && document.querySelector("#device-state").textContent.includes("Trực tuyến")`))
	c.step("set its volume to 35 and see the receiver's answer",
		chromedp.SetValue(chromedp.ID("cmd-volume"), "35"),
		chromedp.Click(chromedp.ID("cmd-volume-send")),
		c.until(`[...document.querySelectorAll("#device-commands li[data-id] .title")].some((e) => e.textContent === "Âm lượng 35: đã xong")`))
	if v := s.rx["bc-1"].Volume(); v != 35 {
		t.Errorf("bc-1 plays at volume %d after the console's command, want 35", v)
	}
	c.check("tech-device")
	if err := s.api.JSON(bg, "POST", "/api/v1/devices/bc-1/commands", map[string]any{"op": "volume", "args": map[string]int{"level": firmwaresim.DefaultVolume}}, nil); err != nil {
		t.Fatal(err)
	}
	// An operator may not command a receiver (nor is shown how, below).
	opTok := f.token("Cán bộ Bình Châu (máy)", "operator", "bc")
	if err := api.NewClient(s.m.URL(), opTok).JSON(bg, "POST", "/api/v1/devices/bc-1/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 10}}, nil); !isStatus(err, 403) {
		t.Errorf("an operator's volume command: %v, want 403", err)
	}

	// An alarm, acknowledged with a note; it stays until it clears.
	if err := s.rx["sh-1"].SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	c.go_("alarms")
	card := `[...document.querySelectorAll("#alarms-active li[data-id]")].find((li) => li.textContent.includes("Lỗi bộ khuếch đại — sh-1"))`
	c.step("the amplifier alarm is listed", c.until(card+` !== undefined`))
	id := c.evalString(card + `.dataset.id`)
	const note = "Đã báo thợ thay bộ khuếch đại"
	c.step("acknowledge it with a note",
		chromedp.SendKeys(chromedp.ID("alarm-"+id+"-note"), note),
		techClick(fmt.Sprintf(`#alarms-active li[data-id=%q] button.ack-send`, id)),
		c.until(fmt.Sprintf(`document.querySelector('#alarms-active li[data-id=%q] .ack').textContent.includes("Đã xác nhận bởi %s") && document.querySelector('#alarms-active li[data-id=%q] .ack').textContent.includes(%q)`, id, f.technician, id, note)))
	var active []loa.Alarm
	if err := s.api.JSON(bg, "GET", "/api/v1/alarms?active=true", nil, &active); err != nil {
		t.Fatal(err)
	}
	acked := false
	for _, a := range active {
		acked = acked || a.ID == id && a.Ack != nil && a.Ack.Note == note && a.Ack.By == loa.UserActorPrefix+f.technician
	}
	if !acked {
		t.Errorf("the active alarms do not hold the acknowledgement: %+v", active)
	}
	var audit []loa.AuditRecord
	if err := s.api.JSON(bg, "GET", "/api/v1/audit?limit=1000", nil, &audit); err != nil {
		t.Fatal(err)
	}
	if !techAudited(audit, "alarm.ack", id) {
		t.Error("the audit log lacks the acknowledgement")
	}
	c.check("tech-alarms")

	// A commune operator sees the alarm and the receiver, and neither how
	// to acknowledge nor how to command it, nor the firmware screen.
	opSH := f.user("cb-dilang", "Cán bộ Di Lăng", "operator", "sh")
	c.signOut()
	c.signInAs("operator", opSH)
	if c.evalBool(`document.querySelector("#nav a[href='#/firmware']") !== null`) {
		t.Error("the operator is shown the firmware screen")
	}
	c.go_("alarms")
	c.step("the operator sees the alarm, acknowledged, without the form",
		c.until(fmt.Sprintf(`document.querySelector('#alarms-active li[data-id=%q] .ack') !== null && !document.querySelector('#alarms-active li[data-id=%q] .ack').hidden`, id, id)))
	if c.evalBool(`document.querySelector("#alarms-active form.ack-form") !== null`) {
		t.Error("the operator is shown the acknowledge form")
	}
	c.step("and the receiver's page without commands",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#alarms-active li[data-id=%q] .title a`, id))),
		c.until(`location.hash === "#/device/sh-1" && document.querySelector("#device-id").textContent === "sh-1"`))
	if c.evalBool(`document.querySelector("#cmd-volume, #device-offset-form, #device-commands") !== null`) {
		t.Error("the operator is shown the receiver's commands")
	}
	opClient := api.NewClient(s.m.URL(), f.token("Cán bộ Di Lăng (máy)", "operator", "sh"))
	if err := opClient.JSON(bg, "POST", "/api/v1/alarms/"+id+"/ack", map[string]string{"note": "x"}, nil); !isStatus(err, 403) {
		t.Errorf("an operator's acknowledgement: %v, want 403", err)
	}
	c.signOut()
	c.signInAs("technician", f.technician)
	c.go_("alarms")
	if err := s.rx["sh-1"].SetAmpFault(false); err != nil {
		t.Fatal(err)
	}
	c.step("repaired, it moves to the cleared list with its note",
		c.until(fmt.Sprintf(`document.querySelector('#alarms-active li[data-id=%q]') === null`, id)),
		c.until(fmt.Sprintf(`document.querySelector('#alarms-cleared li[data-id=%q] .ack') !== null && document.querySelector('#alarms-cleared li[data-id=%q] .ack').textContent.includes(%q)`, id, id, note)))

	// Firmware: a signed image, rolled out to tk-1 (still off) in the
	// first wave and na-2 in the second.
	if plan := devices.PlanWaves([]string{"tk-1", "na-2"}, []int{50, 100}); plan[0].Device != "tk-1" {
		t.Fatalf("waves %+v: the test wants tk-1 in the first", plan)
	}
	image := firmwaresim.BuildImage("1.1.0", true, 64<<10)
	file := filepath.Join(t.TempDir(), "loa-1.1.0.img")
	if err := os.WriteFile(file, image, 0o600); err != nil {
		t.Fatal(err)
	}
	c.go_("firmware")
	c.step("upload the signed image",
		chromedp.SendKeys(chromedp.ID("fw-version"), "1.1.0"),
		chromedp.SendKeys(chromedp.ID("fw-sig"), techSignFirmware(t, s.fwKey, "1.1.0", image)),
		chromedp.SetUploadFiles(chromedp.ID("fw-file"), []string{file}),
		techClick("#fw-form button[type=submit]"),
		c.until(`document.querySelector("#firmware-list").textContent.includes("Phiên bản 1.1.0")`),
		c.until(`document.querySelector("#rollout-image").selectedOptions[0].textContent.startsWith("Phiên bản 1.1.0")`))
	c.step("roll it out in two waves",
		chromedp.SendKeys(chromedp.ID("rollout-devices"), "tk-1, na-2"),
		chromedp.SetValue(chromedp.ID("rollout-waves"), "50, 100"),
		chromedp.SetValue(chromedp.ID("rollout-timeout"), "10m"),
		techClick("#rollout-start"),
		c.until(`document.querySelector("#rollouts-list li[data-id] .title") !== null && document.querySelector("#rollouts-list li[data-id] .title").dataset.state === "running"`),
		c.until(`document.querySelector("#rollouts-list li[data-id] ol.waves").textContent.includes("Đợt 1 (50 %): 0/1 xong")`))
	ro := c.evalString(`document.querySelector("#rollouts-list li[data-id]").dataset.id`)
	sel := fmt.Sprintf(`#rollouts-list li[data-id=%q]`, ro)
	c.step("pause it while tk-1 is off",
		techClick(sel+" button.pause"),
		c.until(fmt.Sprintf(`document.querySelector('%s .title').dataset.state === "paused" && !document.querySelector('%s button.resume').hidden`, sel, sel)))
	var got loa.Rollout
	if err := s.api.JSON(bg, "GET", "/api/v1/rollouts/"+ro, nil, &got); err != nil || got.State != loa.RolloutPaused {
		t.Fatalf("after the console's pause the rollout is %s, %v", got.State, err)
	}
	c.check("tech-firmware")
	// tk-1's power comes back (the same receiver, its key and password).
	fleet, err := firmwaresim.StartFleet(bg, []firmwaresim.Config{s.cfgs["tk-1"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	s.rx["tk-1"] = fleet.Receivers()[0]
	loatest.Eventually(t, time.Minute, func() bool {
		var d api.DeviceView
		return s.api.JSON(bg, "GET", "/api/v1/devices/tk-1", nil, &d) == nil && d.State != nil && d.State.Online
	}, "tk-1 online again")
	c.step("resume: both waves to the end",
		techClick(sel+" button.resume"),
		c.until(fmt.Sprintf(`document.querySelector('%s .title').dataset.state === "completed"`, sel)),
		c.until(fmt.Sprintf(`document.querySelector('%s ol.waves').textContent.includes("Đợt 1 (50 %%): 1/1 xong") && document.querySelector('%s ol.waves').textContent.includes("Đợt 2 (100 %%): 1/1 xong")`, sel, sel)))
	for _, id := range []string{"tk-1", "na-2"} {
		if v := s.rx[id].Firmware(); v != "1.1.0" {
			t.Errorf("%s runs %s after the rollout, want 1.1.0", id, v)
		}
	}
}

// techSignFirmware signs an image as "loa firmware sign" does: the base64
// signature the upload form asks for.
func techSignFirmware(t *testing.T, keyPath, version string, image []byte) string {
	t.Helper()
	key, err := protocol.ReadFirmwarePrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	return protocol.SignFirmware(key, version, hex.EncodeToString(sum[:]))
}

func techAudited(recs []loa.AuditRecord, action, object string) bool {
	for _, r := range recs {
		if r.Action == action && r.Object == object {
			return true
		}
	}
	return false
}

// techClick clicks sel in the middle of the window: a status note shown
// at the bottom of it would take a click meant for a button below.
func techClick(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: "center"})`, sel)),
		chromedp.Click(chromedp.CSS(sel)))
}
