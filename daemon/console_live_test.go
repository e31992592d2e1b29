package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest/browser"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
)

// micTones is the fake microphone's tone sequence, each micToneLen
// long, over and over: frequencies no two of which are harmonics.
var micTones = []float64{500, 750, 1100, 1600, 2300}

const micToneLen = 600 * time.Millisecond

// TestConsoleLive: a commune operator speaks live from the console in
// headless Chromium, whose microphone is a WAV file of a known tone
// sequence (Chromium's fake capture device: its flags count only at
// start, hence a browser of its own rather than a job of TestConsole).
// The operator chooses their commune, turns the audio processing off
// (line-in) and recording on, sees the level meter move and goes on air
// over WebRTC to the controller's WHIP endpoint; every receiver of the
// commune plays the tones in order, the other commune's none; the
// controller forwards the browser encoder's own Opus payloads byte for
// byte (hashed in the page by an encoded-frames tap, and as they leave
// the controller by a plain-RTP listener); the on-air view shows the
// elapsed time and the receivers playing; the stop button ends it and
// the play log (API and screen) has the live session and its recording.
// The page follows a session the station ended, and leaving the screen
// on air ends the session. The band edge both ways: an operator is
// offered no emergency band and the API refuses it; province staff are
// offered it.
func TestConsoleLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	start := time.Now()
	bg := context.Background()
	wav := filepath.Join(t.TempDir(), "tones.wav")
	var buf bytes.Buffer
	if err := media.EncodeWAV(&buf, micTonePCM(len(micTones)), 48000, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wav, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := toneRuns(micTonePCM(3 * len(micTones))); !toneCycle(got, 2) {
		t.Fatalf("the tone detector misreads the source itself: %v", got)
	}

	s := startSystem(t, systemOpts{receivers: 20}) // 10 in commune a (cluster a1), 10 in b
	for _, u := range []map[string]string{
		{"username": "cb-xa-a", "name": "Cán bộ xã A", "role": loa.RoleOperator, "area_id": "a", "password": consolePassword},
		{"username": "so-tinh-p", "name": "Sở TT&TT", "role": loa.RoleProvince, "area_id": "p", "password": consolePassword},
	} {
		if err := s.api.JSON(bg, "POST", "/api/v1/users", u, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browser.Start(t, 1400, 900, browser.FakeMicrophone(wav))
	c := newConsole(t, ctx, s.m.URL())

	// Province staff, under the console's CSP: the emergency band, the
	// province's areas, the microphone test breaks no rule of the CSP.
	c.signInAs("province", "so-tinh-p")
	c.go_("live")
	c.step("province staff are offered the emergency band",
		c.until(`document.querySelector("#live-priority option[value='240']") !== null`),
		c.until(`document.querySelector("#live-area-p") !== null`))
	c.eval(`window.loaCSP = []; document.addEventListener("securitypolicyviolation", (e) => window.loaCSP.push(e.violatedDirective + " " + e.blockedURI))`)
	c.step("choose the province, test the microphone",
		chromedp.Click(chromedp.ID("live-area-p")),
		chromedp.Click(chromedp.ID("live-test")),
		c.until(`document.querySelector("#live-level").value > 0.3`))
	c.check("live")
	if v := c.evalString(`window.loaCSP.join("; ")`); v != "" {
		t.Errorf("the live screen breaks the CSP: %s", v)
	}
	c.signOut()

	// The operator, with the encoded-frames tap: every Opus payload the
	// page's encoder makes, hashed in a worker before WebRTC packs and
	// encrypts it. The worker comes from a blob, which the console's CSP
	// forbids: the page is loaded without it from here on.
	if _, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	c.step("load the page again, without its CSP", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("login-form")))
	c.signInAs("operator", "cb-xa-a")
	c.eval(liveTap)
	c.go_("live")
	c.step("the operator's own areas only, no emergency band",
		c.until(`document.querySelector("#live-area-a") !== null && document.querySelector("#live-area-a1") !== null`))
	if c.evalBool(`document.querySelector("#live-area-b, #live-area-p, #live-priority option[value='240']") !== null`) {
		t.Error("the operator is offered areas outside their commune or the emergency band")
	}
	refused := c.evalAwait(`import("./js/api.js").then((api) => fetch("` + liveWHIP + `?areas=a&priority=240", {method: "POST",
		headers: Object.assign({"Content-Type": "application/sdp"}, api.authHeaders("POST")), body: "v=0\r\n"})).then(async (r) => r.status + " " + (await r.json()).code)`)
	if refused != "403 forbidden" {
		t.Errorf("an operator's live emergency: %q, want 403 forbidden", refused)
	}
	c.step("nothing chosen is refused next to the areas",
		chromedp.Click(chromedp.ID("live-go")),
		c.until(`!document.querySelector("#live-areas-error").hidden`))
	c.step("choose the commune, audio processing off (line-in), test the microphone",
		chromedp.Click(chromedp.ID("live-area-a")),
		chromedp.Click(chromedp.ID("live-echo")),
		chromedp.Click(chromedp.ID("live-noise")),
		chromedp.Click(chromedp.ID("live-gain")),
		chromedp.Click(chromedp.ID("live-record")),
		chromedp.Click(chromedp.ID("live-test")),
		c.until(`document.querySelector("#live-level").value > 0.5`))

	c.step("go on air",
		chromedp.Click(chromedp.ID("live-go")),
		c.until(`!document.querySelector("#live-air").hidden`),
		c.until(`document.querySelector("#live-air").classList.contains("airing")`),
		c.until(`document.querySelector("#live-receivers").textContent.startsWith("10/10 ")`),
		c.until(`document.querySelector("#live-elapsed").textContent !== "0:00"`))
	sess := liveSession(t, s)
	tap := newTap(t) // live_test.go's: the payloads the controller sends, as they leave
	if err := s.api.Do(bg, "GET", fmt.Sprintf("/api/v1/sessions/%s/sdp?dest=%s&plain=1", sess.ID, tap.conn.LocalAddr()), "", nil, nil); err != nil {
		t.Fatalf("listener: %v", err)
	}
	if len(sess.Devices) != 10 || sess.Priority != 160 || sess.Transcoded {
		t.Errorf("the live session: %d receivers, priority %d, transcoded %v; want 10, 160, false", len(sess.Devices), sess.Priority, sess.Transcoded)
	}

	// Every receiver of the commune plays a whole cycle of the tones, in
	// order; the other commune's play nothing of it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var short string
		for _, rx := range s.byArea["a"] {
			if runs := toneRuns(rx.PCM(sess.ID)); !toneCycle(runs, 1) {
				st, _ := rx.Session(sess.ID)
				short = fmt.Sprintf("%s has played the tones %v (received %d, lost %d, late %d, concealed %d, skipped %d, silence %d; the controller forwarded %d)",
					rx.ID(), runs, st.Received, st.Lost, st.Late, st.Concealed, st.Skipped, st.Silence, len(tap.payloads()))
				break
			}
		}
		if short == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not a whole cycle of the tones in order within 30 s: %s", short)
		}
	}
	for _, rx := range s.byArea["b"] {
		if _, ok := rx.Session(sess.ID); ok {
			t.Errorf("%s of the other commune played the live session", rx.ID())
		}
	}
	// The controller forwarded the browser's own payloads.
	for deadline := time.Now().Add(30 * time.Second); len(tap.payloads()) < 100; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the listener heard %d packets in 30 s", len(tap.payloads()))
		}
	}
	checkForwarded(t, tap.payloads(), strings.Split(c.evalString(`window.loaSent.join(",")`), ","))
	c.check("live-air")

	c.step("stop",
		chromedp.Click(chromedp.ID("live-stop")),
		c.until(`document.querySelector("#live-air").hidden && !document.querySelector("#live-done").hidden`),
		c.until(`document.querySelector("#live-done").textContent.includes("Đã kết thúc phát trực tiếp")`))
	got, err := s.api.Session(bg, sess.ID)
	if err != nil || got.State != loa.SessionStopped || got.Reason != station.LiveEndedBySpeaker || got.RecordingID == "" {
		t.Errorf("after the stop button the session is %+v, %v; want stopped by the speaker, recorded", got, err)
	}
	var log []loa.PlayLogEntry
	if err := s.api.JSON(bg, "GET", "/api/v1/playlog?limit=100", nil, &log); err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, e := range log {
		if e.SessionID == sess.ID {
			events[e.Event] = true
		}
	}
	if !events["started"] || !events["stopped"] || !events["aired"] {
		t.Errorf("the play log of the live session: %v; want started, aired, stopped", events)
	}
	c.go_("log")
	c.step("the broadcast log shows the live session",
		c.until(`[...document.querySelectorAll("#log-list li")].some((li) => li.textContent.includes("Phát trực tiếp") && li.textContent.includes("Bản ghi: Trực tiếp "))`))
	c.check("log-live")

	// The controller ends it (someone else stops the session): the page
	// says so and goes back to its form.
	c.go_("live")
	c.step("on air again",
		chromedp.Click(chromedp.ID("live-area-a")),
		chromedp.Click(chromedp.ID("live-go")),
		c.until(`document.querySelector("#live-air").classList.contains("airing")`))
	again := liveSession(t, s)
	if err := s.api.StopSession(bg, again.ID); err != nil {
		t.Fatal(err)
	}
	c.step("the page hears that the station ended it",
		c.until(`document.querySelector("#live-air").hidden && document.querySelector("#live-done").textContent.includes("đã kết thúc ở trạm")`))
	// Leaving the screen on air ends the session.
	c.step("on air once more",
		chromedp.Click(chromedp.ID("live-go")),
		c.until(`document.querySelector("#live-air").classList.contains("airing")`))
	left := liveSession(t, s)
	c.go_("overview")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := s.api.Session(bg, left.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != loa.SessionPlaying {
			if got.Reason != station.LiveEndedBySpeaker {
				t.Errorf("leaving the screen ended the live session as %q, want %q", got.Reason, station.LiveEndedBySpeaker)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live session plays on after its speaker left the screen")
		}
	}
	t.Logf("TestConsoleLive took %v", time.Since(start).Round(time.Millisecond))
}

// liveWHIP is the controller's WHIP endpoint.
const liveWHIP = "/api/v1/live"

// liveTap wraps RTCPeerConnection so that every Opus payload the page's
// sender makes is hashed into window.loaSent (the first 8 bytes of its
// SHA-256, in hex) before WebRTC packs it: the console's own code runs
// unchanged. The frames pass through a worker, not the page's thread,
// which screenshots and axe-core keep busy for seconds.
const liveTap = `(() => {
  if (window.loaSent) return;
  window.loaSent = [];
  const src = 'const hex = (b) => [...new Uint8Array(b).slice(0, 8)].map((x) => x.toString(16).padStart(2, "0")).join("");' +
    'onmessage = (e) => e.data.readable.pipeThrough(new TransformStream({ transform(frame, out) {' +
    '  const copy = frame.data.slice(0); out.enqueue(frame);' +
    '  crypto.subtle.digest("SHA-256", copy).then((h) => postMessage(hex(h)));' +
    '} })).pipeTo(e.data.writable).catch((err) => postMessage("pipe: " + err));';
  const worker = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  worker.onmessage = (e) => window.loaSent.push(e.data);
  worker.onerror = (e) => window.loaSent.push("worker: " + e.message);
  const Orig = window.RTCPeerConnection;
  window.RTCPeerConnection = function (cfg) {
    const pc = new Orig(Object.assign({}, cfg, { encodedInsertableStreams: true }));
    const add = pc.addTransceiver.bind(pc);
    pc.addTransceiver = (...args) => {
      const tr = add(...args);
      const { readable, writable } = tr.sender.createEncodedStreams();
      worker.postMessage({ readable, writable }, [readable, writable]);
      return tr;
    };
    return pc;
  };
  window.RTCPeerConnection.prototype = Orig.prototype;
})()`

// liveSession is the live session playing on the controller.
func liveSession(t *testing.T, s *system) *loa.Session {
	t.Helper()
	var list []*loa.Session
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/sessions", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, x := range list {
		if x.Origin.Kind == loa.OriginLive && x.State == loa.SessionPlaying {
			return x
		}
	}
	t.Fatalf("no live session playing among %d", len(list))
	return nil
}

// checkForwarded: every payload the controller forwarded is one the
// page's encoder made, byte for byte (sent: their hashes).
func checkForwarded(t *testing.T, forwarded [][]byte, sent []string) {
	t.Helper()
	made := make(map[string]bool, len(sent))
	for _, h := range sent {
		made[h] = true
	}
	foreign := 0
	for _, p := range forwarded {
		h := sha256.Sum256(p)
		if !made[hex.EncodeToString(h[:8])] {
			foreign++
		}
	}
	if len(forwarded) < 100 || foreign > 0 {
		t.Errorf("the controller forwarded %d payloads, %d of them not the browser's own (it made %d); want 100 or more, all the browser's",
			len(forwarded), foreign, len(sent))
	}
}

// micTonePCM is n tones of micTones in turn, each micToneLen, at 48 kHz.
func micTonePCM(n int) []int16 {
	per := int(micToneLen.Seconds() * 48000)
	out := make([]int16, 0, n*per)
	for k := range n {
		f := micTones[k%len(micTones)]
		for i := range per {
			out = append(out, int16(0.4*32767*math.Sin(2*math.Pi*f*float64(i)/48000)))
		}
	}
	return out
}

// toneRuns reads pcm in 100 ms windows, names each by the tone of
// micTones that holds most of its energy (or none: silence, concealment,
// a change of tone), and returns the tones of the runs at least 200 ms
// long, in order.
func toneRuns(pcm []int16) []int {
	const win = 4800
	var runs []int
	cur, n := -1, 0
	flush := func() {
		if cur >= 0 && n >= 2 && (len(runs) == 0 || runs[len(runs)-1] != cur) {
			runs = append(runs, cur)
		}
	}
	for o := 0; o+win <= len(pcm); o += win {
		w := pcm[o : o+win]
		var total float64
		for _, v := range w {
			total += float64(v) * float64(v)
		}
		tone := -1
		if total/win > 100*100 { // above about −50 dBFS
			for i, f := range micTones {
				// Goertzel power over the window is (N/2)²·A² for a tone of
				// amplitude A; the window's energy is N·A²/2.
				if p := goertzelPower(w, f); p/(win/2) > 0.6*total {
					tone = i
				}
			}
		}
		if tone != cur {
			flush()
			cur, n = tone, 0
		}
		n++
	}
	flush()
	return runs
}

// toneCycle reports whether runs holds cycles whole cycles of micTones
// in order (from any tone of the sequence).
func toneCycle(runs []int, cycles int) bool {
	need := cycles * len(micTones)
	k := 1
	for i := 1; i < len(runs); i++ {
		if runs[i] == (runs[i-1]+1)%len(micTones) {
			k++
		} else {
			k = 1
		}
		if k >= need {
			return true
		}
	}
	return false
}

func goertzelPower(pcm []int16, f float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*f/48000)
	var s1, s2 float64
	for _, v := range pcm {
		s := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// newConsole is a console on a browser of the test's own, with the
// checks TestConsole makes (axe-core, the glossary) and confirm()
// dialogs accepted.
func newConsole(t *testing.T, ctx context.Context, url string) *console {
	t.Helper()
	axe, err := os.ReadFile(filepath.Join("..", "web", "vendor", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	dctx := context.WithoutCancel(ctx)
	dialogs := chromedp.Events(dctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &console{t: t, ctx: ctx, axe: string(axe), art: artefactDir(t), url: url, glossaryGap: glossaryGap(t)}
}
