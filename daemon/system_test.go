package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// system is a controller in-process, on loopback ports, driven through its
// HTTP API, with simulated receivers.
type system struct {
	t      *testing.T
	m      *Main
	api    *api.Client
	fleet  *firmwaresim.Fleet
	byArea map[string][]*firmwaresim.Receiver
}

type systemOpts struct {
	receivers int // alternately in cluster a1 (commune a) and b1 (commune b); byArea is keyed by commune
	mqttURL   string
	impair    firmwaresim.Impairment
	tele      time.Duration                     // receivers' telemetry period; 0 = the simulator's default
	configure func(*Config)                     // optional: adjust the controller's config before Open
	tls       bool                              // TLS listeners on loopback; receivers connect over TLS with the station CA
	v1        int                               // the first v1 receivers are of contract v1: no caps, plain RTP with the token
	clock     func(i int) firmwaresim.ClockSpec // optional: receiver i's clocks (default perfect)

	// receiver, optional, adjusts receiver i's config (battery, station key, ...).
	receiver func(*Main, int, *firmwaresim.Config)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(ioDiscard{}, nil))
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.LiveBind = "127.0.0.1:0"
	// Plain on loopback; tls_test.go turns the TLS listeners on.
	cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "", ""
	return cfg
}

// openMain opens a controller with cfg; the caller closes it (a restart
// test closes one and opens another on the same data).
func openMain(t *testing.T, cfg Config) *Main {
	t.Helper()
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func startSystem(t *testing.T, o systemOpts) *system {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MQTTURL = o.mqttURL
	if o.tls {
		cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(ctx); err != nil {
		t.Fatalf("open controller: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	if m.AdminToken == "" {
		t.Fatal("first start created no admin token")
	}
	s := &system{t: t, m: m, api: api.NewClient(m.URL(), m.AdminToken), byArea: map[string][]*firmwaresim.Receiver{}}
	for _, a := range []loa.Area{
		{ID: "p", Name: "Tỉnh P", Kind: loa.AreaProvince},
		{ID: "a", ParentID: "p", Name: "Xã A", Kind: loa.AreaCommune},
		{ID: "b", ParentID: "p", Name: "Xã B", Kind: loa.AreaCommune},
		{ID: "a1", ParentID: "a", Name: "Thôn A1", Kind: loa.AreaCluster},
		{ID: "b1", ParentID: "b", Name: "Thôn B1", Kind: loa.AreaCluster},
	} {
		if err := s.api.CreateArea(ctx, a); err != nil {
			t.Fatalf("create area %s: %v", a.ID, err)
		}
	}
	cfgs := make([]firmwaresim.Config, o.receivers)
	areaOf := map[string]string{}
	broker, ca := m.MQTTURL(), (*x509.CertPool)(nil)
	if o.tls {
		ca = stationPool(t, m)
		if u := m.MQTTTLSURL(); u != "" { // else an external broker's tls:// URL
			broker = u
		}
	}
	for i := range cfgs {
		id, area := fmt.Sprintf("rx-%03d", i), "a1"
		if i%2 == 1 {
			area = "b1"
		}
		pw, err := s.api.CreateDevice(ctx, loa.Device{ID: id, AreaID: area, Name: id})
		if err != nil {
			t.Fatalf("provision %s: %v", id, err)
		}
		imp := o.impair
		imp.Seed = int64(i + 1)
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: broker, CA: ca, V1: i < o.v1, Decode: true, KeepPCM: true,
			Impair: imp, TeleInterval: o.tele, Logger: testLogger(t).With("receiver", id),
			StationKey: m.StationKey.Public().(ed25519.PublicKey)}
		if o.clock != nil {
			cfgs[i].Clock = o.clock(i)
		}
		if o.receiver != nil {
			o.receiver(m, i, &cfgs[i])
		}
		areaOf[id] = area[:1] // the commune: a or b
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatalf("start receivers: %v", err)
	}
	t.Cleanup(func() { fleet.Close() })
	s.fleet = fleet
	for _, r := range fleet.Receivers() {
		s.byArea[areaOf[r.ID()]] = append(s.byArea[areaOf[r.ID()]], r)
	}
	if err := s.api.WaitOnline(ctx, o.receivers, time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

// testSignal is 1 s of a 1 kHz tone then a 200 Hz → 4 kHz sweep, at 48 kHz.
func testSignal(d time.Duration) []int16 {
	const rate = 48000
	n := int(d.Seconds() * rate)
	out := make([]int16, n)
	phase := 0.0
	for i := range out {
		f := 1000.0
		if i >= rate {
			f = 200 + 3800*float64(i-rate)/float64(max(n-rate, 1))
		}
		phase += 2 * math.Pi * f / rate
		out[i] = int16(0.5 * 32767 * math.Sin(phase))
	}
	return out
}

func (s *system) upload(pcm []int16, rate int) *loa.Media {
	s.t.Helper()
	var buf bytes.Buffer
	if err := media.EncodeWAV(&buf, pcm, rate, 1); err != nil {
		s.t.Fatal(err)
	}
	m, err := s.api.UploadMedia(context.Background(), "test-signal.wav", buf.Bytes())
	if err != nil {
		s.t.Fatalf("upload: %v", err)
	}
	return m
}

func (s *system) play(mediaID string, areas ...string) *loa.Session {
	s.t.Helper()
	sess, err := s.api.StartSession(context.Background(), api.SessionRequest{MediaID: mediaID, Targets: loa.Targets{Areas: areas}})
	if err != nil {
		s.t.Fatalf("start session: %v", err)
	}
	return sess
}

// finish waits for the session to end on the controller and on every
// receiver in areas.
func (s *system) finish(sess *loa.Session, d time.Duration, areas ...string) *loa.Session {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	end, err := s.api.WaitSession(ctx, sess.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, a := range areas {
		for _, r := range s.byArea[a] {
			for {
				if st, ok := r.Session(sess.ID); ok && st.Done {
					break
				}
				if ctx.Err() != nil {
					st, _ := r.Session(sess.ID)
					s.t.Fatalf("receiver %s never finished session %s: %+v", r.ID(), sess.ID, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return end
}

func TestSystemPlaysToOneArea(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 20})
	src := testSignal(4 * time.Second)
	med := s.upload(src, 48000)
	if med.Frames < 199 || med.Frames > 202 {
		t.Fatalf("4 s of audio became %d frames", med.Frames)
	}

	// Garbage at the media port must be ignored while the session streams.
	garbage(t, s.m.Engine.LocalAddr().String())

	sess := s.play(med.ID, "a")
	if len(sess.Devices) != 10 {
		t.Fatalf("session resolved %d devices, want the 10 in area a", len(sess.Devices))
	}
	end := s.finish(sess, med.Duration, "a")
	if end.State != loa.SessionEnded {
		t.Errorf("session state %q (reason %q), want ended", end.State, end.Reason)
	}
	for _, r := range s.byArea["a"] {
		st, _ := r.Session(sess.ID)
		if float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
			t.Errorf("%s decoded %d of %d frames: %+v", r.ID(), st.Decoded, med.Frames, st)
		}
		pcm := r.PCM(sess.ID)
		if c := bestCorrelation(src, pcm); c < 0.9 {
			t.Errorf("%s: decoded audio correlates %.3f with the source, want ≥ 0.9", r.ID(), c)
		}
		if len(pcm) < 48000 {
			t.Fatalf("%s kept only %d samples", r.ID(), len(pcm))
		}
		if f := dominantFrequency(pcm[12000 : 12000+9600]); math.Abs(f-1000) > 20 {
			// The first second is a 1 kHz tone; 250–450 ms is well within it.
			t.Errorf("%s: dominant frequency %.0f Hz in the tone, want 1000", r.ID(), f)
		}
	}
	for _, r := range s.byArea["b"] {
		if st, ok := r.Session(sess.ID); ok && st.Received > 0 {
			t.Errorf("%s is outside the target area but received %d packets", r.ID(), st.Received)
		}
	}
}

func TestSystemStopWithinOneSecond(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 6})
	med := s.upload(testSignal(20*time.Second), 48000)
	sess := s.play(med.ID, "p")
	// Wait until every receiver is playing, then stop.
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range s.fleet.Receivers() {
		for {
			if st, ok := r.Session(sess.ID); ok && st.Played > 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never started playing", r.ID())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopAt := time.Now()
	if err := s.api.StopSession(context.Background(), sess.ID); err != nil {
		t.Fatalf("stop: %v", err)
	}
	end := s.finish(sess, 0, "a", "b")
	if end.State != loa.SessionStopped {
		t.Errorf("state %q, want stopped", end.State)
	}
	for _, r := range s.fleet.Receivers() {
		st, _ := r.Session(sess.ID)
		if late := st.Ended.Sub(stopAt); late > time.Second {
			t.Errorf("%s stopped %v after the stop request, want within 1 s", r.ID(), late)
		}
		if st.Played >= uint64(med.Frames) {
			t.Errorf("%s played the whole programme despite the stop", r.ID())
		}
	}
	if err := s.api.StopSession(context.Background(), sess.ID); err == nil {
		t.Error("stopping a stopped session succeeded")
	}
}

func TestSystemImpairedLink(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 10, impair: firmwaresim.Impairment{Loss: 0.05, Jitter: 40 * time.Millisecond}})
	src := testSignal(5 * time.Second)
	med := s.upload(src, 48000)
	sess := s.play(med.ID, "p")
	s.finish(sess, med.Duration, "a", "b")
	var concealed, fec, lost uint64
	for _, r := range s.fleet.Receivers() {
		st, _ := r.Session(sess.ID)
		// Frames skipped at a late start on a loaded host (maxSkipped)
		// are not the link's loss, which is what this counts.
		if float64(st.Played+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
			t.Errorf("%s played %d of %d frames on a 5%% loss link: %+v", r.ID(), st.Played, med.Frames, st)
		}
		concealed += st.Concealed
		fec += st.FECRecovered
		lost += st.Lost
		if c := bestCorrelation(src, r.PCM(sess.ID)); c < 0.5 {
			t.Errorf("%s: audio correlates only %.2f with the source on a lossy link", r.ID(), c)
		}
	}
	if lost == 0 || concealed+fec == 0 {
		t.Errorf("a 5%% loss link lost %d packets, concealed %d, FEC-recovered %d: the impairment or the counting is broken", lost, concealed, fec)
	}
	t.Logf("10 receivers, 5%% loss, 40 ms jitter: lost %d, concealed %d, FEC-recovered %d", lost, concealed, fec)
}

func TestSystemSecondControllerOnSameData(t *testing.T) {
	cfg := testConfig(t)
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m2 := NewMain(cfg, testLogger(t))
	err := m2.Open(context.Background())
	if err == nil {
		m2.Close()
		t.Fatal("a second controller opened the same database")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("unclear error for a locked database: %v", err)
	}
}

func TestSystemBadUpload(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	for name, data := range map[string][]byte{
		"empty.wav":    {},
		"noise.bin":    bytes.Repeat([]byte{0x13, 0x37}, 500),
		"trunc.wav":    []byte("RIFF\x24\x00\x00\x00WAVEfmt "),
		"fake.mp3":     append([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0}, 100)...),
		"document.pdf": []byte("%PDF-1.4 not audio at all"),
	} {
		_, err := s.api.UploadMedia(ctx, name, data)
		var ae *api.ClientError
		if !asAPIError(err, &ae) || ae.Status < 400 || ae.Status >= 500 || ae.Message == "" {
			t.Errorf("%s: got %v, want a 4xx with a message", name, err)
		}
	}
	list, err := s.m.Media.MediaList(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("bad uploads stored media: %v %v", list, err)
	}
	files, _ := filepath.Glob(filepath.Join(s.m.DB.MediaDir(), "*"))
	hidden, _ := filepath.Glob(filepath.Join(s.m.DB.MediaDir(), ".*"))
	if len(files)+len(hidden) != 0 {
		t.Errorf("bad uploads left files behind: %v %v", files, hidden)
	}
}

func asAPIError(err error, target **api.ClientError) bool {
	e, ok := err.(*api.ClientError)
	if ok {
		*target = e
	}
	return ok
}

// garbage sends junk and fake RTP/RTCP to the media port.
func garbage(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range [][]byte{
		{}, {0xff}, bytes.Repeat([]byte{0xaa}, 1500),
		{0x80, 0x6f, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0xf8, 0xff, 0xfe}, // RTP
		{0x81, 0xc9, 0x00, 0x07, 1, 2, 3, 4},                                     // truncated RTCP RR
	} {
		c.Write(p)
	}
}

// bestCorrelation aligns got against want (codec delay, playout offset)
// and returns the normalised cross-correlation of a window of the sweep.
func bestCorrelation(want []int16, got []int16) float64 {
	const win = 9600 // 200 ms
	start := 48000 + 24000
	if len(want) < start+win {
		start = len(want) / 2
	}
	at := func(lag int) float64 {
		g0 := start + lag
		if g0 < 0 || g0+win > len(got) || start+win > len(want) {
			return -1
		}
		var xy, xx, yy float64
		for i := 0; i < win; i += 2 {
			x, y := float64(want[start+i]), float64(got[g0+i])
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if xx == 0 || yy == 0 {
			return -1
		}
		return xy / math.Sqrt(xx*yy)
	}
	// Lags up to maxLag (a receiver that re-synced once on a loaded host
	// plays its audio that much later or earlier): coarse steps, then
	// every sample around the best few.
	const maxLag, step = 15360, 8
	type cand struct {
		lag int
		c   float64
	}
	var top []cand
	for lag := -maxLag; lag <= maxLag; lag += step {
		top = append(top, cand{lag, at(lag)})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].c > top[j].c })
	best := -1.0
	for _, c := range top[:min(8, len(top))] {
		for lag := c.lag - step; lag <= c.lag+step; lag++ {
			best = max(best, at(lag))
		}
	}
	return best
}

// dominantFrequency scans 100 Hz – 8 kHz in 10 Hz steps with Goertzel.
func dominantFrequency(pcm []int16) float64 {
	bestF, bestP := 0.0, -1.0
	for f := 100.0; f <= 8000; f += 10 {
		w := 2 * math.Pi * f / 48000
		coeff := 2 * math.Cos(w)
		var s1, s2 float64
		for _, v := range pcm {
			s := float64(v) + coeff*s1 - s2
			s2, s1 = s1, s
		}
		if p := s1*s1 + s2*s2 - coeff*s1*s2; p > bestP {
			bestF, bestP = f, p
		}
	}
	return bestF
}

// maxSkipped is how many frames a receiver may pass over to keep to the
// session timeline (Skipped: a re-sync after its clock estimate moved on
// a loaded test machine) and still count as having played a programme:
// one re-sync of up to 300 ms. On a CI host running the whole suite, every
// receiver of a test re-synced by about 180 ms at once, early in a
// session, while its clock sync was seconds old (its first exchanges'
// errors); the sync tests and bench measure sync itself.
// Slots passed over because the test process itself stalled (Stalled, the
// receiver's own count) are the host's doing and are counted as played.
const maxSkipped = 15
