package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest/browser"
)

// The province-scale station TestConsoleWeights seeds: 50 communes of 100
// receivers each, 4 of each commune's online (simulated), and 200
// schedules.
const (
	weightCommunes   = 50
	weightPerCommune = 100
	weightOnline     = 4 // per commune
	weightSchedules  = 200
	// weightLimit is what one screen's first load may transfer: every
	// request, the event stream's first events included (issue 10).
	weightLimit = 300_000
	// weightChangeLimit bounds the event that says one receiver went
	// offline: only the change, never the list.
	weightChangeLimit = 2_000
)

// weightPending are screens known to be over weightLimit, with what will
// bring them under it; they are measured and reported, not failed. Take
// an entry out when its fix lands.
var weightPending = map[string]string{}

// TestConsoleWeights opens each screen of the console's navigation, as
// the province and as a commune operator, on a station of 5,000
// receivers and 200 schedules, and sums the bytes each first load
// transfers (Chromium's own count, encoded: headers and gzipped bodies,
// with the HTTP cache off) until the page is quiet and the event stream
// has sent its first event of every topic. A screen over weightLimit
// fails. Then one receiver going offline must cost the open overview one
// small event. The screens are the links the page shows, so screens
// added later are weighed too.
func TestConsoleWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	start := time.Now()
	bg := context.Background()
	m := NewMain(testConfig(t), testLogger(t))
	if err := m.Open(bg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	admin := api.NewClient(m.URL(), m.AdminToken)

	// The area tree and the receivers, straight into the store (the
	// API's device registration is the same call, 5,000 requests slower).
	if err := m.DB.CreateArea(bg, &loa.Area{ID: "qn", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	var online []firmwaresim.Config
	for c := range weightCommunes {
		area := fmt.Sprintf("xa-%02d", c)
		if err := m.DB.CreateArea(bg, &loa.Area{ID: area, ParentID: "qn", Name: fmt.Sprintf("Xã số %d", c+1), Kind: loa.AreaCommune}); err != nil {
			t.Fatal(err)
		}
		// Communes on a grid over the province, receivers spread in each.
		lat0, lon0 := 14.5+float64(c/10)*0.15, 108.3+float64(c%10)*0.07
		for i := range weightPerCommune {
			d := &loa.Device{ID: fmt.Sprintf("%s-%03d", area, i), AreaID: area, Name: fmt.Sprintf("Loa cụm %d", i+1),
				Lat: lat0 + float64(i/10)*0.004, Lon: lon0 + float64(i%10)*0.004}
			pw, err := m.DB.CreateDevice(bg, d)
			if err != nil {
				t.Fatal(err)
			}
			if i < weightOnline {
				online = append(online, firmwaresim.Config{ID: d.ID, Password: pw, Broker: m.MQTTURL(), Logger: testLogger(t).With("receiver", d.ID)})
			}
		}
	}
	fleet, err := firmwaresim.StartFleet(bg, online)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := admin.WaitOnline(bg, len(online), time.Minute); err != nil {
		t.Fatal(err)
	}

	// 200 daily schedules over the communes, straight into the store
	// (through the API each checks conflicts with all the others: 20 s
	// here). The scheduler is not told, so none fires while the test runs;
	// the console reads them as it would any.
	med, err := admin.UploadMedia(bg, "Bản tin sáng", sineWAV(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i := range weightSchedules {
		at := time.Now().Add(2*time.Hour + time.Duration(i)*6*time.Minute).UTC()
		sc := &loa.Schedule{ID: fmt.Sprintf("lich-%03d", i), Name: fmt.Sprintf("Chương trình %d", i+1), Enabled: true, Priority: 64,
			Rule:    loa.Rule{Kind: loa.RuleDaily, Time: at.Format("15:04:05"), Zone: "UTC"},
			Content: loa.Content{MediaID: med.ID}, Targets: loa.Targets{Areas: []string{fmt.Sprintf("xa-%02d", i%weightCommunes)}}}
		if err := m.DB.CreateSchedule(bg, sc); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []map[string]string{
		{"username": "so-tttt", "name": "Sở TT&TT", "role": loa.RoleProvince, "area_id": "qn", "password": consolePassword},
		{"username": "cb-xa07", "name": "Cán bộ xã số 8", "role": loa.RoleOperator, "area_id": "xa-07", "password": consolePassword},
	} {
		if err := admin.JSON(bg, "POST", "/api/v1/users", u, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d receivers (%d online), %d schedules in %v", weightCommunes*weightPerCommune, len(online), weightSchedules, time.Since(start).Round(time.Millisecond))

	ctx := browser.Start(t, 1400, 900)
	c := &console{t: t, ctx: ctx, url: m.URL()}
	var rows []weightRow
	for _, who := range []struct{ role, username string }{{"province", "so-tttt"}, {"operator", "cb-xa07"}} {
		c.signInAs(who.role, who.username) // the cookie every tab of the browser shares
		var paths []string
		if err := json.Unmarshal([]byte(c.evalString(`JSON.stringify([...document.querySelectorAll("#nav a[data-path]")].map((a) => a.dataset.path))`)), &paths); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			w := c.weigh(who.role, p)
			rows = append(rows, w.row)
			if who.role == "province" && p == "overview" {
				weighChange(t, w, fleet.Receivers()[0])
			}
			w.close()
		}
		c.signOut()
	}

	var b strings.Builder
	fmt.Fprintf(&b, "first load of each screen at %d receivers and %d schedules (limit %d kB):\n", weightCommunes*weightPerCommune, weightSchedules, weightLimit/1000)
	fmt.Fprintf(&b, "%-10s %-14s %5s %8s %8s  %s\n", "role", "screen", "reqs", "kB", "stream", "largest")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-10s %-14s %5d %8.1f %8.1f  %s\n", r.role, r.screen, r.requests, float64(r.bytes)/1000, float64(r.stream)/1000, r.largest)
	}
	t.Log(b.String())
	for _, r := range rows {
		if r.bytes <= weightLimit {
			continue
		}
		if why, ok := weightPending[r.screen]; ok {
			t.Logf("%s as %s: %d bytes, over %d (known: %s)", r.screen, r.role, r.bytes, weightLimit, why)
			continue
		}
		t.Errorf("%s as %s: first load transfers %d bytes, over %d (largest: %s)", r.screen, r.role, r.bytes, weightLimit, r.largest)
	}
	t.Logf("TestConsoleWeights took %v", time.Since(start).Round(time.Millisecond))
}

// weightRow is one screen's first load.
type weightRow struct {
	role, screen  string
	requests      int
	bytes, stream int64 // all of it; the event stream's part
	largest       string
}

// weighing is one screen's first load, in a tab of its own.
type weighing struct {
	row   weightRow
	c     *console // the tab
	rec   *netRecorder
	close func()
}

// weigh opens screen path in a new tab (a new document, the HTTP cache
// off, the browser's sign-in cookie) and measures everything it
// transfers until it is quiet: the event stream's first event of every
// topic has come, and no request is in flight across two rounds of the
// page's frames (requests a screen makes once its data arrived
// included). A screen known to be heavy (weightPending) is measured
// until its requests are done, from this side: its page may be too busy
// to answer.
func (c *console) weigh(role, path string) weighing {
	c.t.Helper()
	tab, cancel := chromedp.NewContext(c.ctx)
	rec := &netRecorder{}
	rec.reset()
	if err := chromedp.Listen(tab, rec.event); err != nil {
		cancel()
		c.t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		cancel()
		c.t.Fatal(err)
	}
	tc := c.with(c.t)
	tc.ctx = tab
	w := weighing{c: tc, rec: rec, close: cancel}
	deadline := time.Now().Add(30 * time.Second)
	if _, heavy := weightPending[path]; heavy {
		tc.step(fmt.Sprintf("open %s as %s", path, role), chromedp.Navigate(c.url+"/#/"+path))
		// Done: the stream is open, nothing else in flight, and no new
		// request for a second (a busy page starts its next ones late).
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		last, still := -1, 0
		for range tick.C {
			n, inflight, _ := rec.state()
			if n == last && inflight == 0 && rec.streaming() {
				still++
			} else {
				still = 0
			}
			if last = n; still == 20 {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s as %s: requests still in flight after 30 s: %s", path, role, rec.inflight())
			}
		}
		w.row = rec.row(role, path)
		return w
	}
	tc.step(fmt.Sprintf("open %s as %s", path, role),
		chromedp.Navigate(c.url+"/#/"+path),
		c.until(`document.querySelector("#nav a[aria-current=page]") !== null && document.querySelector("#nav a[aria-current=page]").dataset.path === `+fmt.Sprintf("%q", path)),
		c.until(`document.querySelector("#live").className === "on"`))
	last := -1
	for {
		tc.evalAwait(`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => r("ok"), 0))))`)
		n, inflight, topics := rec.state()
		if inflight == 0 && topics >= len(eventTopicsAll) && n == last {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s as %s: not quiet after 30 s (%d requests, %d in flight: %s; %d topics)", path, role, n, inflight, rec.inflight(), topics)
		}
		last = n
	}
	w.row = rec.row(role, path)
	return w
}

// eventTopicsAll are the topics the console's stream asks for, each of
// which sends a first (reset) event.
var eventTopicsAll = []string{api.TopicSessions, api.TopicDevices, api.TopicAlarms, api.TopicAlerts, api.TopicPlayLog}

// weighChange: with the overview open, one receiver going offline costs
// one small devices event, not the list.
func weighChange(t *testing.T, w weighing, rx *firmwaresim.Receiver) {
	t.Helper()
	c, rec := w.c, w.rec
	c.step("the map holds every receiver, on one canvas",
		c.until(`document.querySelector("#overview-map").dataset.state === "ready"`))
	if got := c.evalString(`document.querySelector("#overview-map").dataset.markers + " " + document.querySelector("#overview-map").dataset.renderer`); got != fmt.Sprint(weightCommunes*weightPerCommune, " canvas") {
		t.Errorf("the province's map: %s markers, renderer", got)
	}
	// For the eye: the province's 5,000 receivers and 50 outlines.
	if shot, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	} else if err := os.WriteFile(filepath.Join(artefactDir(t), "console-weights-overview-1400.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	mark := rec.messages()
	rx.Kill()
	var ev sseMessage
	for deadline := time.Now().Add(30 * time.Second); ev.event == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("no devices event named %s within 30 s of it going offline", rx.ID())
		}
		c.evalAwait(`new Promise((r) => setTimeout(() => r("ok"), 0))`) // a round trip to the page: its events come first
		for _, m := range rec.messagesSince(mark) {
			if m.event == api.TopicDevices && strings.Contains(m.data, `"`+rx.ID()+`"`) {
				ev = m
			}
		}
	}
	t.Logf("%s offline: a devices event of %d bytes: %s", rx.ID(), ev.size(), ev.data)
	if ev.size() > weightChangeLimit {
		t.Errorf("one receiver going offline sent a %d-byte event (limit %d): %.300s", ev.size(), weightChangeLimit, ev.data)
	}
}

// netRecorder keeps what Chromium says of the network since the last
// reset: each request's bytes, and the event stream's messages.
type netRecorder struct {
	mu   sync.Mutex
	reqs map[network.RequestID]*netRequest
	sse  []sseMessage
}

type netRequest struct {
	url        string
	stream     bool  // the event stream: its bytes are counted as they come
	done       bool  // finished or failed
	headers    int64 // of the response, as received
	body, data int64 // encoded and decoded bytes received so far
	total      int64 // at loadingFinished: all of it, headers included
}

type sseMessage struct{ id, event, data string }

// size is the message as it crossed the wire: "id: …\nevent: …\ndata: …\n\n".
func (m sseMessage) size() int {
	return len("id: \nevent: \ndata: \n\n") + len(m.id) + len(m.event) + len(m.data)
}

func (r *netRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = map[network.RequestID]*netRequest{}
	r.sse = nil
}

// event runs on chromedp's reading goroutine: record and return.
func (r *netRecorder) event(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reqs == nil {
		return
	}
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if strings.HasPrefix(e.Request.URL, "http") {
			r.reqs[e.RequestID] = &netRequest{url: e.Request.URL, stream: e.Type == network.ResourceTypeEventSource}
		}
	case *network.EventResponseReceived:
		if q := r.reqs[e.RequestID]; q != nil {
			q.headers = int64(e.Response.EncodedDataLength)
			q.stream = q.stream || e.Type == network.ResourceTypeEventSource
		}
	case *network.EventDataReceived:
		if q := r.reqs[e.RequestID]; q != nil {
			q.body += e.EncodedDataLength
			q.data += e.DataLength
		}
	case *network.EventLoadingFinished:
		if q := r.reqs[e.RequestID]; q != nil {
			q.done, q.total = true, int64(e.EncodedDataLength)
		}
	case *network.EventLoadingFailed:
		if q := r.reqs[e.RequestID]; q != nil {
			q.done = true
		}
	case *network.EventEventSourceMessageReceived:
		if r.reqs[e.RequestID] != nil {
			r.sse = append(r.sse, sseMessage{id: e.EventID, event: e.EventName, data: e.Data})
		}
	}
}

// state is the requests seen, those in flight (not the stream), and how
// many of the stream's topics have sent their first event.
func (r *netRecorder) state() (n, inflight, topics int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.reqs {
		if !q.done && !q.stream {
			inflight++
		}
	}
	seen := map[string]bool{}
	for _, m := range r.sse {
		if slices.Contains(eventTopicsAll, m.event) {
			seen[m.event] = true
		}
	}
	return len(r.reqs), inflight, len(seen)
}

// streaming reports whether the event stream's request was made.
func (r *netRecorder) streaming() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.reqs {
		if q.stream {
			return true
		}
	}
	return false
}

// inflight names the requests in flight.
func (r *netRecorder) inflight() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		if !q.done && !q.stream {
			out = append(out, q.url)
		}
	}
	return strings.Join(out, " ")
}

func (r *netRecorder) messages() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sse)
}

func (r *netRecorder) messagesSince(i int) []sseMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sse[i:])
}

// row sums the requests: a finished one by Chromium's total, the stream
// by what it received so far (its headers and the larger of the encoded
// and decoded counts: it is not compressed, and Chromium may report its
// chunks' encoded size late).
func (r *netRecorder) row(role, screen string) weightRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := weightRow{role: role, screen: screen, requests: len(r.reqs)}
	type sized struct {
		url string
		n   int64
	}
	var each []sized
	for _, q := range r.reqs {
		n := q.total
		if q.stream || !q.done {
			n = q.headers + max(q.body, q.data)
		}
		if q.stream {
			w.stream += n
		}
		w.bytes += n
		each = append(each, sized{q.url, n})
	}
	sort.Slice(each, func(i, j int) bool { return each[i].n > each[j].n })
	var top []string
	for _, s := range each[:min(3, len(each))] {
		u := s.url[strings.Index(s.url, "//")+2:]
		u = u[strings.Index(u, "/"):]
		top = append(top, fmt.Sprintf("%s %.1f kB", u, float64(s.n)/1000))
	}
	w.largest = strings.Join(top, ", ")
	return w
}
