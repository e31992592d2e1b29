package daemon

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
)

func init() { consoleParts = append(consoleParts, consolePart{"OverviewMap", consoleOverviewMap}) }

// consoleOverviewMap: the overview's map has one marker per receiver in
// the caller's scope, styled by its state, follows a receiver going
// offline (and coming back) without a reload, and with no tile URL (the
// test controller has none) draws each commune as the outline around its
// receivers, labelled by name. A commune operator sees only its own.
func consoleOverviewMap(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	bg := context.Background()
	c.signOut()
	c.signInAs("province", f.province)
	c.go_("overview")
	c.step("the map is drawn, one marker per receiver of the province",
		c.until(`document.querySelector("#overview-map") && document.querySelector("#overview-map").dataset.state === "ready"`),
		c.until(`document.querySelectorAll("#overview-map path.rx[data-id]").length === 6`))
	if got := c.evalString(`document.querySelector("#overview-map").dataset.markers + " " + document.querySelector("#overview-map").dataset.renderer + " " + document.querySelector("#overview-map").dataset.tiles`); got != "6 svg no" {
		t.Errorf("map markers, renderer, tiles: %q", got)
	}
	// Each marker's state is the receiver's, as the API says.
	var devs []struct {
		ID       string
		State    *loa.DeviceState
		Problems []string
	}
	if err := s.api.JSON(bg, "GET", "/api/v1/devices", nil, &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		want := "online"
		switch {
		case d.State == nil || !d.State.Online:
			want = "offline"
		case len(d.Problems) > 0:
			want = "alarm"
		}
		c.step(d.ID+" is "+want, c.until(markerIs(d.ID, want)))
	}

	// No tiles: the communes' outlines, labelled by name.
	c.step("the communes are outlined",
		c.until(`document.querySelector("#overview-map").dataset.outlines === "4" && document.querySelectorAll("#overview-map path.map-area").length === 4`),
		c.until(`[...document.querySelectorAll("#overview-map .map-area-label")].map((e) => e.textContent).sort().join("|") === "Phường Tịnh Kỳ|Thị trấn Di Lăng|Xã Bình Châu|Xã Nghĩa An"`))
	if got := c.evalString(`[...document.querySelectorAll("#overview-map img")].map((i) => i.src).join(" ")`); got != "" {
		t.Errorf("tiles drawn with no tile URL: %s", got)
	}

	// A click on a marker names it, its commune and its state.
	c.step("click bc-1",
		chromedp.Click(chromedp.CSS(`#overview-map path[data-id="bc-1"]`)),
		c.until(`document.querySelector("#overview-map .map-popup") && document.querySelector("#overview-map .map-popup").textContent === "bc-1 · Xã Bình Châu · Trực tuyến"`))
	c.step("close it",
		chromedp.Click(chromedp.CSS(`#overview-map .leaflet-popup-close-button`)),
		c.until(`document.querySelector("#overview-map .map-popup") === null`))
	c.step("the legend counts in words",
		c.until(`document.querySelector("#map-legend").textContent.includes("Trực tuyến") && document.querySelector("#map-legend").textContent.includes("Mất kết nối")`))
	c.check("overview-map")

	// A session to Bình Châu: its receivers play; an amplifier fault: an
	// alarm. Each shows, and goes, with no reload.
	c.eval(`window.loaMapNoReload = true`)
	prov := api.NewClient(s.m.URL(), f.provinceToken)
	sess, err := prov.StartSession(bg, api.SessionRequest{MediaID: f.news.ID, Targets: loa.Targets{Areas: []string{"bc"}}, MaxDuration: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	c.step("Bình Châu plays", c.until(markerIs("bc-1", "playing")+" && "+markerIs("bc-2", "playing")), c.until(`document.querySelector("#map-count-playing").textContent === "2"`))
	if err := prov.StopSession(bg, sess.ID); err != nil {
		t.Fatal(err)
	}
	c.step("and stops", c.until(markerIs("bc-1", "online")+" && "+markerIs("bc-2", "online")))
	if err := s.rx["na-2"].SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	c.step("na-2 has an alarm", c.until(markerIs("na-2", "alarm")), c.until(`document.querySelector("#map-count-alarm").textContent === "1"`))
	if err := s.rx["na-2"].SetAmpFault(false); err != nil {
		t.Fatal(err)
	}
	c.step("and is well again", c.until(markerIs("na-2", "online")))

	// A receiver registered while the map is open appears on it (never
	// heard from: offline); decommissioned, it leaves.
	if _, err := s.api.CreateDevice(bg, loa.Device{ID: "bc-cho-moi", AreaID: "bc", Name: "Loa chợ mới", Lat: 15.240, Lon: 108.866}); err != nil {
		t.Fatal(err)
	}
	c.step("the new receiver appears", c.until(markerIs("bc-cho-moi", "offline")), c.until(`document.querySelector("#overview-map").dataset.markers === "7"`))
	if err := s.api.JSON(bg, "DELETE", "/api/v1/devices/bc-cho-moi", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.step("and leaves when decommissioned",
		c.until(`document.querySelector('#overview-map path[data-id="bc-cho-moi"]') === null && document.querySelector("#overview-map").dataset.markers === "6"`))

	// tk-1 comes back (a new box on the same device: new credentials)
	// if an earlier job left it off, then loses power: its marker
	// follows, with no reload. It ends as it began.
	const id = "tk-1"
	wasOnline := c.evalBool(markerIs(id, "online"))
	if !wasOnline {
		reviveReceiver(t, f, id)
		c.step(id+" comes back online on the map", c.until(markerIs(id, "online")))
	}
	s.rx[id].Kill()
	c.step(id+" goes offline on the map", c.until(markerIs(id, "offline")))
	if got := c.text("#map-count-offline"); got == "0" {
		t.Errorf("the legend counts %s offline", got)
	}
	if wasOnline {
		reviveReceiver(t, f, id)
		c.step(id+" comes back online on the map", c.until(markerIs(id, "online")))
	}
	if !c.evalBool(`window.loaMapNoReload === true`) {
		t.Error("the page was reloaded")
	}

	// A commune operator's map holds its commune only.
	operator := f.user("cb-binhchau-bando", "Cán bộ Bình Châu (bản đồ)", "operator", "bc")
	c.signOut()
	c.signInAs("operator", operator)
	c.go_("overview")
	c.step("the operator's map: Bình Châu's two receivers and its outline",
		c.until(`document.querySelector("#overview-map") && document.querySelector("#overview-map").dataset.state === "ready"`),
		c.until(`[...document.querySelectorAll("#overview-map path.rx[data-id]")].map((p) => p.dataset.id).sort().join(" ") === "bc-1 bc-2"`),
		c.until(`[...document.querySelectorAll("#overview-map .map-area-label")].map((e) => e.textContent).join("|") === "Xã Bình Châu"`))
	c.check("overview-map-operator")
}

// markerIs is JavaScript: device id's marker has state's class.
func markerIs(id, state string) string {
	return fmt.Sprintf(`(() => { const p = document.querySelector('#overview-map path[data-id=%q]'); return !!p && p.classList.contains("rx-%s"); })()`, id, state)
}

// reviveReceiver starts a new simulated box for device id with fresh
// credentials (the old box is dead) and waits until it is online; it runs
// until TestConsole ends and replaces the old one in s.rx.
func reviveReceiver(t *testing.T, f *consoleFixture, id string) {
	t.Helper()
	s, bg := f.s, context.Background()
	var creds struct{ Password string }
	if err := s.api.JSON(bg, "POST", "/api/v1/devices/"+id+"/credentials", nil, &creds); err != nil {
		t.Fatal(err)
	}
	fleet, err := firmwaresim.StartFleet(bg, []firmwaresim.Config{{ID: id, Password: creds.Password, Broker: s.m.MQTTURL(),
		Decode: true, KeepPCM: true, Logger: testLogger(s.t).With("receiver", id)}})
	if err != nil {
		t.Fatal(err)
	}
	s.t.Cleanup(func() { fleet.Close() })
	s.rx[id] = fleet.Receivers()[0]
}
