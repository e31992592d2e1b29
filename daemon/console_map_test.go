package daemon

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest/browser"
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
	// The outline is the convex hull: an inner point is left out.
	if got := c.evalAwait(`import("./js/map.js").then((m) => JSON.stringify(m.hull([[0, 0], [2, 0], [1, 1], [0, 2], [2, 2], [1, 0]])))`); got != "[[0,0],[2,0],[2,2],[0,2]]" {
		t.Errorf("hull: %s", got)
	}

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

	// tk-1 comes back if an earlier job left it off, then loses power: its marker
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

// reviveReceiver starts a new simulated box for device id as it was set
// up (the old box is dead) and waits until it is online; it runs
// until TestConsole ends and replaces the old one in s.rx.
func reviveReceiver(t *testing.T, f *consoleFixture, id string) {
	t.Helper()
	s, bg := f.s, context.Background()
	fleet, err := firmwaresim.StartFleet(bg, []firmwaresim.Config{s.cfgs[id]}) // as set up: later jobs start it the same way
	if err != nil {
		t.Fatal(err)
	}
	s.t.Cleanup(func() { fleet.Close() })
	s.rx[id] = fleet.Receivers()[0]
}

// TestConsoleMapTiles: with a tile URL configured, the overview draws its
// tiles (the CSP lets them come from that host only) and the provider's
// credit as written; when the tiles do not come, the communes' outlines
// are drawn instead.
func TestConsoleMapTiles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	var failing atomic.Bool
	var served atomic.Int64
	tile := pngTile(t)
	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(tile)
	}))
	defer tiles.Close()
	cfg := testConfig(t)
	cfg.MapTiles, cfg.MapAttribution = tiles.URL+"/{z}/{x}/{y}.png", "© Bản đồ <thử>"
	m := openMain(t, cfg)
	defer m.Close()
	bg := context.Background()
	admin := api.NewClient(m.URL(), m.AdminToken)
	if err := admin.CreateArea(bg, loa.Area{ID: "qn", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateArea(bg, loa.Area{ID: "bc", ParentID: "qn", Name: "Xã Bình Châu", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
	for id, p := range map[string][2]float64{"bc-1": {15.230, 108.870}, "bc-2": {15.236, 108.874}} {
		if _, err := admin.CreateDevice(bg, loa.Device{ID: id, AreaID: "bc", Name: id, Lat: p[0], Lon: p[1]}); err != nil {
			t.Fatal(err)
		}
	}
	req := map[string]string{"username": "so-tttt", "name": "Sở TT&TT", "role": loa.RoleProvince, "area_id": "qn", "password": consolePassword}
	if err := admin.JSON(bg, "POST", "/api/v1/users", req, nil); err != nil {
		t.Fatal(err)
	}
	c := &console{t: t, ctx: browser.Start(t, 1400, 900), url: m.URL()}
	c.signInAs("province", "so-tttt")
	c.step("the tiles are drawn, with the provider's credit as written",
		c.until(`document.querySelector("#overview-map") && document.querySelector("#overview-map").dataset.state === "ready" && document.querySelector("#overview-map").dataset.tiles === "yes"`),
		c.until(`[...document.querySelectorAll("#overview-map img.leaflet-tile")].some((i) => i.complete && i.naturalWidth === 256)`),
		c.until(`document.querySelector("#overview-map .leaflet-control-attribution").textContent.includes("© Bản đồ <thử>")`),
		c.until(`document.querySelectorAll("#overview-map path.rx[data-id]").length === 2`))
	if served.Load() == 0 {
		t.Error("no tile was asked for")
	}
	if c.evalBool(`document.querySelector("#overview-map path.map-area") !== null`) {
		t.Error("outlines drawn over working tiles")
	}

	failing.Store(true)
	c.step("tiles that do not come give way to the outlines",
		chromedp.Reload(),
		c.until(`document.querySelector("#overview-map") && document.querySelector("#overview-map").dataset.state === "ready"`),
		c.until(`document.querySelector("#overview-map").dataset.outlines === "1" && document.querySelector("#overview-map .map-area-label").textContent === "Xã Bình Châu"`))
}

// pngTile is a 256×256 tile of one colour.
func pngTile(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0xe8, 0xee, 0xe0, 0xff}}, image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
