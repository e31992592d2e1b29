package firmwaresim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

const otaPassword = "s3cret"

// imageServer is the controller's download route: images by path, Basic
// auth with the device's id and MQTT password, Range support from
// http.ServeContent.
type imageServer struct {
	*httptest.Server
	mu      sync.Mutex
	images  map[string][]byte
	ranges  []string // the Range header of every authorised request, "" for none
	ifRange []string // the If-Range header of every request with a Range
	noRange bool     // answer every request with the whole image (200)
	hangups int      // requests under /hangup/, answered by closing the connection
	hold    chan struct{}
}

func newImageServer(t *testing.T) *imageServer {
	t.Helper()
	s := &imageServer{images: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) serve(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || !strings.HasPrefix(user, "rx") || pass != otaPassword {
		http.Error(w, "unauthorised", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	img, found := s.images[req.URL.Path]
	s.ranges = append(s.ranges, req.Header.Get("Range"))
	if req.Header.Get("Range") != "" {
		s.ifRange = append(s.ifRange, req.Header.Get("If-Range"))
	}
	noRange, hold := s.noRange, s.hold
	if strings.HasPrefix(req.URL.Path, "/hangup/") {
		s.hangups++
	}
	s.mu.Unlock()
	if strings.HasPrefix(req.URL.Path, "/hangup/") {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if !found {
		http.NotFound(w, req)
		return
	}
	if hold != nil { // half the image, then wait: a download in progress
		w.Header().Set("Content-Length", itoa(len(img)))
		w.Write(img[:len(img)/2])
		w.(http.Flusher).Flush()
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		}
		w.Write(img[len(img)/2:])
		return
	}
	if noRange {
		w.Write(img)
		return
	}
	// The image's hash as a strong ETag, as the controller's route does.
	w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(img)))
	http.ServeContent(w, req, "fw.bin", time.Time{}, bytes.NewReader(img))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (s *imageServer) put(path string, img []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[path] = img
	return s.URL + path
}

func (s *imageServer) rangeRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.ranges {
		if r != "" {
			out = append(out, r)
		}
	}
	return out
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// signedArgs are the args the controller sends for img at url.
func signedArgs(key ed25519.PrivateKey, version, url string, img []byte) protocol.FirmwareArgs {
	sum := sha256.Sum256(img)
	h := hex.EncodeToString(sum[:])
	return protocol.FirmwareArgs{Version: version, URL: url, Size: int64(len(img)), SHA256: h, Sig: protocol.SignFirmware(key, version, h)}
}

// acksOf returns the acks of command id received so far, in order.
func acksOf(rec *recorder, dev, id string) []protocol.Ack {
	var out []protocol.Ack
	for _, m := range rec.all(isTopic(dev, protocol.KindAck)) {
		if a, err := protocol.DecodeAck(m.payload); err == nil && a.ID == id {
			out = append(out, a)
		}
	}
	return out
}

func progressOf(t *testing.T, a protocol.Ack) protocol.FirmwareProgress {
	t.Helper()
	var p protocol.FirmwareProgress
	if err := json.Unmarshal(a.Result, &p); err != nil {
		t.Fatalf("progress ack %+v: %v", a, err)
	}
	return p
}

func resultOf(t *testing.T, a protocol.Ack) protocol.FirmwareResult {
	t.Helper()
	var res protocol.FirmwareResult
	if err := json.Unmarshal(a.Result, &res); err != nil {
		t.Fatalf("final ack %+v: %v", a, err)
	}
	return res
}

func statusIs(dev string, online bool, boot uint64) func(mqttMsg) bool {
	return func(m mqttMsg) bool {
		s, err := protocol.DecodeStatus(m.payload)
		return m.topic == protocol.DeviceTopic(dev, protocol.KindStatus) && err == nil && s.Online == online && s.Boot == boot
	}
}

// index returns the position of the first message that matches, -1 if none.
func (rec *recorder) index(match func(mqttMsg) bool) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.msgs {
		if match(m) {
			return i
		}
	}
	return -1
}

func ackIs(dev, id, state string) func(mqttMsg) bool {
	return func(m mqttMsg) bool {
		a, err := protocol.DecodeAck(m.payload)
		return m.topic == protocol.DeviceTopic(dev, protocol.KindAck) && err == nil && a.ID == id && a.State == state
	}
}

// A good image downloads with the device's credentials, is verified,
// installed to the spare slot and booted: the Will of the old boot fires,
// the new boot comes online, reports the new version in telemetry and acks
// done from the new boot. The next update goes to the other slot.
func TestFirmwareUpdate(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	srv := newImageServer(t)
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, FirmwareKey: pub, TeleInterval: time.Hour})
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.0.0"}) || r.Firmware() != "1.0.0" {
		t.Fatalf("new receiver: slots %+v, running %s", s, r.Firmware())
	}
	boot := r.Boot()
	rec.wait(t, "online", statusIs("rx1", true, boot))

	img := BuildImage("1.2.0", true, 256<<10)
	id := rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.2.0", srv.put("/fw/1.2.0", img), img), time.Now().Add(time.Minute))
	done := rec.finalAck(t, "rx1", id)
	if done.State != protocol.AckDone {
		t.Fatalf("final ack %+v", done)
	}
	if res := resultOf(t, done); res != (protocol.FirmwareResult{Version: "1.2.0", Slot: "b"}) {
		t.Errorf("result %+v", res)
	}
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "b", A: "1.0.0", B: "1.2.0"}) || r.Firmware() != "1.2.0" {
		t.Errorf("after update: slots %+v, running %s", s, r.Firmware())
	}
	if r.Boot() != boot+1 {
		t.Errorf("boot %d, want %d", r.Boot(), boot+1)
	}

	// The acks tell the whole story, in order, with progress at phase
	// changes and quarters of the download, not per chunk.
	acks := acksOf(rec, "rx1", id)
	var phases []string
	var last int64
	for _, a := range acks[1 : len(acks)-1] {
		p := progressOf(t, a)
		if a.State != protocol.AckProgress || p.Total != int64(len(img)) || p.Bytes < last {
			t.Errorf("progress ack %+v: %+v", a, p)
		}
		last = p.Bytes
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	wantPhases := []string{protocol.FWPhaseDownloading, protocol.FWPhaseVerifying, protocol.FWPhaseInstalling, protocol.FWPhaseRebooting}
	if acks[0].State != protocol.AckAccepted || strings.Join(phases, ",") != strings.Join(wantPhases, ",") {
		t.Errorf("acks %+v: phases %v, want accepted then %v", acks, phases, wantPhases)
	}
	if n := len(acks) - 2 - (len(wantPhases) - 1); n < 2 || n > 4 {
		t.Errorf("%d downloading progress acks for a 256 KiB image, want the start and up to 3 quarters", n)
	}

	// Old boot's Will, then the new boot's online status, its telemetry
	// with the new version, and only then the done ack.
	will := rec.index(statusIs("rx1", false, boot))
	online := rec.index(statusIs("rx1", true, boot+1))
	tele := rec.index(func(m mqttMsg) bool {
		tl, err := protocol.DecodeTelemetry(m.payload)
		return m.topic == protocol.DeviceTopic("rx1", protocol.KindTele) && err == nil && tl.FW == "1.2.0"
	})
	doneAt := rec.index(ackIs("rx1", id, protocol.AckDone))
	if will < 0 || !(will < online && online < tele && tele < doneAt) {
		t.Errorf("message order: will %d, online %d, telemetry %d, done %d", will, online, tele, doneAt)
	}

	// The next update installs to the other slot.
	img2 := BuildImage("1.3.0", true, 10_000)
	id = rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.3.0", srv.put("/fw/1.3.0", img2), img2), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone || resultOf(t, a) != (protocol.FirmwareResult{Version: "1.3.0", Slot: "a"}) {
		t.Fatalf("second update acked %+v", a)
	}
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.3.0", B: "1.2.0"}) {
		t.Errorf("after the second update: slots %+v", s)
	}
	if got := srv.rangeRequests(); len(got) != 0 {
		t.Errorf("Range requests %v without a dropped connection", got)
	}
}

// A download whose connection drops resumes where it stopped; a server
// that ignores Range (200) makes the receiver start over. Both install.
func TestFirmwareResume(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	srv := newImageServer(t)
	const cut = 40_000
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, FirmwareKey: pub, Impair: Impairment{CutDownloadAt: cut}})

	img := BuildImage("1.1.0", true, 100_000)
	id := rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.1.0", srv.put("/fw/a", img), img), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
		t.Fatalf("resumed update acked %+v", a)
	}
	if got := srv.rangeRequests(); len(got) != 1 || got[0] != "bytes=40000-" {
		t.Errorf("Range requests %q, want one bytes=40000-", got)
	}
	srv.mu.Lock()
	ifRange := srv.ifRange
	srv.mu.Unlock()
	if want := fmt.Sprintf(`"%x"`, sha256.Sum256(img)); len(ifRange) != 1 || ifRange[0] != want {
		t.Errorf("If-Range %q, want the ETag %s", ifRange, want)
	}
	if r.Firmware() != "1.1.0" {
		t.Errorf("running %s after a resumed update", r.Firmware())
	}

	srv.mu.Lock()
	srv.noRange, srv.ranges = true, nil
	srv.mu.Unlock()
	img2 := BuildImage("1.2.0", true, 100_000)
	id = rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.2.0", srv.put("/fw/b", img2), img2), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
		t.Fatalf("update from a server without Range acked %+v", a)
	}
	if got := srv.rangeRequests(); len(got) != 1 {
		t.Errorf("Range requests %q, want the one the server ignored", got)
	}
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.2.0", B: "1.1.0"}) {
		t.Errorf("slots %+v", s)
	}
}

// Every refusal fails with its code, installs nothing, changes no slot
// and does not reboot.
func TestFirmwareRefused(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	_, otherKey := newKey(t)
	srv := newImageServer(t)
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, Firmware: "1.4.0", FirmwareKey: pub})
	keyless := startReceiver(t, Config{ID: "rx2", Password: otaPassword, Broker: broker, Firmware: "1.4.0"})
	// rx3's MQTT password is not the one the download server knows.
	startReceiver(t, Config{ID: "rx3", Password: "other", Broker: broker, Firmware: "1.4.0", FirmwareKey: pub})
	boot := r.Boot()
	later := time.Now().Add(time.Minute)

	img := BuildImage("1.5.0", true, 5000)
	url := srv.put("/fw/1.5.0", img)
	good := signedArgs(priv, "1.5.0", url, img)
	tampered := append([]byte(nil), img...)
	tampered[3000] ^= 1
	mod := func(f func(*protocol.FirmwareArgs)) protocol.FirmwareArgs { a := good; f(&a); return a }
	old := BuildImage("1.3.9", true, 5000)

	for _, c := range []struct {
		name string
		dev  string
		args any
		code string
		msg  string // in the ack's msg
	}{
		{"no args", "rx1", nil, protocol.FWBadArgs, "firmware"},
		{"no signature", "rx1", mod(func(a *protocol.FirmwareArgs) { a.Sig = "" }), protocol.FWBadArgs, "sig"},
		{"ftp url", "rx1", mod(func(a *protocol.FirmwareArgs) { a.URL = "ftp://x/fw" }), protocol.FWBadArgs, "url"},
		{"no key", "rx2", good, protocol.FWBadSignature, "no firmware key"},
		{"downgrade", "rx1", signedArgs(priv, "1.3.9", srv.put("/fw/old", old), old), protocol.FWDowngrade, "1.3.9 is not newer than the running 1.4.0"},
		{"equal version", "rx1", mod(func(a *protocol.FirmwareArgs) { a.Version = "1.4" }), protocol.FWDowngrade, "not newer"},
		{"tampered", "rx1", mod(func(a *protocol.FirmwareArgs) { a.URL = srv.put("/fw/tampered", tampered) }), protocol.FWBadChecksum, "SHA-256"},
		{"longer than size", "rx1", mod(func(a *protocol.FirmwareArgs) { a.Size-- }), protocol.FWBadChecksum, "larger than 4999"},
		{"shorter than size", "rx1", mod(func(a *protocol.FirmwareArgs) { a.Size++ }), protocol.FWBadChecksum, "5000 bytes, want 5001"},
		{"wrong key", "rx1", signedArgs(otherKey, "1.5.0", url, img), protocol.FWBadSignature, "does not verify"},
		{"relabelled", "rx1", mod(func(a *protocol.FirmwareArgs) { a.Version = "9.0" }), protocol.FWBadSignature, "version 9.0"},
		{"not found", "rx1", mod(func(a *protocol.FirmwareArgs) { a.URL = srv.URL + "/fw/none" }), protocol.FWDownload, "404"},
		{"server hangs up", "rx1", mod(func(a *protocol.FirmwareArgs) { a.URL = srv.URL + "/hangup/fw" }), protocol.FWDownload, "tries without progress"},
		{"wrong password", "rx3", good, protocol.FWDownload, "401"},
	} {
		id := rec.send(t, c.dev, protocol.OpFirmware, c.args, later)
		a := rec.finalAck(t, c.dev, id)
		if a.State != protocol.AckFailed || a.Code != c.code || !strings.Contains(a.Msg, c.msg) {
			t.Errorf("%s: acked %+v, want failed %s with %q", c.name, a, c.code, c.msg)
		}
	}
	for _, rx := range []*Receiver{r, keyless} {
		if s := rx.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.4.0"}) || rx.Firmware() != "1.4.0" {
			t.Errorf("%s after refusals: slots %+v, running %s", rx.ID(), s, rx.Firmware())
		}
	}
	if r.Boot() != boot {
		t.Errorf("a refused update rebooted: boot %d, want %d", r.Boot(), boot)
	}
	srv.mu.Lock()
	hangups := srv.hangups
	srv.mu.Unlock()
	// net/http itself retries a GET once when a reused connection closes
	// before the response, so an attempt may reach the server twice.
	if hangups < downloadTries || hangups > 2*downloadTries {
		t.Errorf("a server that hangs up was tried %d times, want %d attempts", hangups, downloadTries)
	}
	if n := len(rec.all(statusIs("rx1", false, boot))); n != 0 {
		t.Errorf("%d offline statuses of rx1", n)
	}

	// An expired command is not started.
	id := rec.send(t, "rx1", protocol.OpFirmware, good, time.Now().Add(-time.Second))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckExpired {
		t.Errorf("expired firmware command acked %+v", a)
	}
	if r.FirmwareSlots().B != "" {
		t.Errorf("expired command installed: %+v", r.FirmwareSlots())
	}
}

// An image that does not come up healthy, or whose header names another
// version than the one installed, is rolled back by the receiver itself:
// the failed boot never comes online, the bootloader boots the old slot
// (the boot counter rises by two), and the old image acks rolled_back.
func TestFirmwareRollback(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	srv := newImageServer(t)
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, FirmwareKey: pub})

	for _, c := range []struct {
		version string
		img     []byte
	}{
		{"1.1.0", BuildImage("1.1.0", false, 20_000)}, // crashes after boot
		{"1.2.0", BuildImage("1.7.0", true, 20_000)},  // a healthy image of another version, signed as 1.2.0
	} {
		boot := r.Boot()
		rec.wait(t, "online", statusIs("rx1", true, boot))
		id := rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, c.version, srv.put("/fw/"+c.version, c.img), c.img), time.Now().Add(time.Minute))
		a := rec.finalAck(t, "rx1", id)
		if a.State != protocol.AckFailed || a.Code != protocol.FWRolledBack || !strings.Contains(a.Msg, "version "+c.version) {
			t.Errorf("%s: acked %+v, want failed rolled_back naming the version", c.version, a)
		}
		if res := resultOf(t, a); res != (protocol.FirmwareResult{Version: "1.0.0", Slot: "a"}) {
			t.Errorf("%s: result %+v, want the old version and slot", c.version, res)
		}
		if s := r.FirmwareSlots(); s.Active != "a" || s.A != "1.0.0" || r.Firmware() != "1.0.0" {
			t.Errorf("%s: slots %+v, running %s", c.version, s, r.Firmware())
		}
		if r.Boot() != boot+2 {
			t.Errorf("%s: boot %d, want %d (the failed boot and the fallback)", c.version, r.Boot(), boot+2)
		}
		rec.wait(t, "the fallback boot online", statusIs("rx1", true, boot+2))
		if n := len(rec.all(statusIs("rx1", true, boot+1))); n != 0 {
			t.Errorf("%s: the failed boot came online", c.version)
		}
		if progressOf(t, acksOf(rec, "rx1", id)[len(acksOf(rec, "rx1", id))-2]).Phase != protocol.FWPhaseRebooting {
			t.Errorf("%s: no rebooting progress before the rollback", c.version)
		}
	}
	teleWhere(rec, t, "rx1", "telemetry of the old version after rollback", func(tl protocol.Telemetry) bool { return tl.FW == "1.0.0" })
}

// One firmware command at a time; the receiver obeys other commands while
// it downloads; a reboot command interrupts the download, which fails with
// code download and installs nothing.
func TestFirmwareBusyAndInterrupted(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	srv := newImageServer(t)
	srv.hold = make(chan struct{})
	defer close(srv.hold)
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, FirmwareKey: pub})
	later := time.Now().Add(time.Minute)

	img := BuildImage("2.0.0", true, 64<<10)
	args := signedArgs(priv, "2.0.0", srv.put("/fw/2.0.0", img), img)
	first := rec.send(t, "rx1", protocol.OpFirmware, args, later)
	rec.ack(t, "rx1", first, protocol.AckAccepted)
	// Half the image arrived: the 25 % progress ack says so.
	rec.wait(t, "a quarter downloaded", func(m mqttMsg) bool {
		a, err := protocol.DecodeAck(m.payload)
		if err != nil || a.ID != first || a.State != protocol.AckProgress {
			return false
		}
		var p protocol.FirmwareProgress
		return json.Unmarshal(a.Result, &p) == nil && p.Bytes > 0
	})

	second := rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "2.1.0", args.URL, img), later)
	if a := rec.finalAck(t, "rx1", second); a.State != protocol.AckFailed || a.Code != protocol.FWBusy || !strings.Contains(a.Msg, "2.0.0") {
		t.Errorf("second firmware command acked %+v, want failed busy", a)
	}
	vol := rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 33}, later)
	if a := rec.finalAck(t, "rx1", vol); a.State != protocol.AckDone {
		t.Errorf("volume during a download acked %+v", a)
	}

	boot := r.Boot()
	reboot := rec.send(t, "rx1", protocol.OpReboot, nil, later)
	a := rec.finalAck(t, "rx1", first)
	if a.State != protocol.AckFailed || a.Code != protocol.FWDownload || !strings.Contains(a.Msg, "interrupted") {
		t.Errorf("interrupted download acked %+v", a)
	}
	rec.ack(t, "rx1", reboot, protocol.AckDone)
	rec.wait(t, "online after the reboot", statusIs("rx1", true, boot+1))
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.0.0"}) {
		t.Errorf("slots %+v after an interrupted download", s)
	}
	if rec.index(ackIs("rx1", first, protocol.AckFailed)) > rec.index(ackIs("rx1", reboot, protocol.AckDone)) {
		t.Error("the interrupted download's ack came after the reboot's")
	}
}

// A flash that fails to write fails the command with code install and
// changes nothing; closing a receiver mid-download ends the download and
// sends nothing more.
func TestFirmwareInstallFailsAndClose(t *testing.T) {
	t.Parallel()
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	pub, priv := newKey(t)
	srv := newImageServer(t)
	r := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: broker, FirmwareKey: pub, Impair: Impairment{FailInstall: true}})
	boot := r.Boot()
	img := BuildImage("1.1.0", true, 8000)
	id := rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.1.0", srv.put("/fw/1.1.0", img), img), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != protocol.FWInstall || !strings.Contains(a.Msg, "slot b") {
		t.Errorf("failed install acked %+v", a)
	}
	if s := r.FirmwareSlots(); s != (FirmwareSlots{Active: "a", A: "1.0.0"}) || r.Boot() != boot {
		t.Errorf("after a failed install: slots %+v, boot %d (was %d)", s, r.Boot(), boot)
	}

	srv.mu.Lock()
	srv.hold = make(chan struct{})
	srv.mu.Unlock()
	defer close(srv.hold)
	img = BuildImage("1.2.0", true, 8000)
	id = rec.send(t, "rx1", protocol.OpFirmware, signedArgs(priv, "1.2.0", srv.put("/fw/1.2.0", img), img), time.Now().Add(time.Minute))
	rec.ack(t, "rx1", id, protocol.AckAccepted)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "offline", statusIs("rx1", false, boot))
	for _, a := range acksOf(rec, "rx1", id) {
		if a.Final() {
			t.Errorf("a closed receiver acked %+v", a)
		}
	}
}

func TestFirmwareConfigChecked(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	for _, cfg := range []Config{
		{ID: "rx1", Broker: broker, Firmware: "sim-1.0"},
		{ID: "rx1", Broker: broker, FirmwareKey: make(ed25519.PublicKey, 31)},
	} {
		r := NewReceiver(cfg)
		if err := r.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "firmware") {
			t.Errorf("%+v: start error %v", cfg, err)
			r.Close()
		}
	}
}

func TestRangeStart(t *testing.T) {
	for v, want := range map[string]int64{"bytes 40000-99999/100000": 40000, "bytes 0-0/1": 0, "bytes 7-/*": 7} {
		if got, ok := rangeStart(v); !ok || got != want {
			t.Errorf("%q: %d, %v; want %d", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "bytes", "bytes -5/10", "items 1-2/3", "bytes x-1/2", "bytes -1-2/3", "bytes +5-9/10", "bytes 99999999999999999999-/*"} {
		if got, ok := rangeStart(v); ok {
			t.Errorf("%q parsed as %d", v, got)
		}
	}
}

func FuzzRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 40000-99999/100000", "bytes */100", "bytes 1-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, ok := rangeStart(v)
		if !ok {
			return
		}
		digits, _, _ := strings.Cut(strings.TrimPrefix(v, "bytes "), "-")
		if m, err := strconv.ParseUint(digits, 10, 63); !strings.HasPrefix(v, "bytes ") || err != nil || int64(m) != n || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("%q: start %d", v, n)
		}
	})
}
