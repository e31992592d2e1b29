package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// guard bounds waits so a bug hangs nothing; no test asserts on it.
const guard = 20 * time.Second

// tone encodes n 20 ms frames of a sine at hz, as a browser would send.
func tone(t testing.TB, hz float64, n int) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	enc.SetBitrate(32000)
	enc.SetInBandFEC(true)
	pcm := make([]int16, protocol.FrameSamples)
	var out [][]byte
	for f := range n {
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(f*protocol.FrameSamples+i)/protocol.ClockRate))
		}
		b := make([]byte, 1275)
		k, err := enc.Encode(pcm, b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[:k])
	}
	return out
}

// whipHandler is a minimal WHIP endpoint over s, for the package's tests.
type whipHandler struct {
	s    *Server
	opts Options
	mu   sync.Mutex
	up   *Uplink
}

func (h *whipHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.Method {
	case http.MethodPost:
		u, answer, err := h.s.Accept(r.Context(), string(body), h.opts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.up = u
		h.mu.Unlock()
		w.Header().Set("Location", "/whip/1")
		w.Header().Set("Content-Type", "application/sdp")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, answer)
	case http.MethodPatch:
		if err := h.uplink().Trickle(string(body)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		h.uplink().Close()
	}
}

func (h *whipHandler) uplink() *Uplink {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

func newTestServer(t *testing.T, opts Options) (*Server, *whipHandler, *httptest.Server) {
	t.Helper()
	s, err := New(Config{Bind: "127.0.0.1:0", UplinkTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &whipHandler{s: s, opts: opts}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return s, h, hs
}

// TestUplinkForwardsTheClientsPackets: a pion WHIP client's Opus packets
// come out of the uplink byte for byte, in order, with the uplink's losses
// as gaps; the Receiver Reports it gets carry the receivers' loss.
func TestUplinkForwardsTheClientsPackets(t *testing.T) {
	const receiversLoss = 64 // a quarter
	_, h, hs := newTestServer(t, Options{Loss: func() uint8 { return receiversLoss }})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := Dial(ctx, hs.Client(), hs.URL+"/whip", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup()
	if err := c.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	u := h.uplink()
	pkts := tone(t, 440, 150)
	lost := map[int]bool{30: true, 31: true, 77: true}
	var got [][]byte
	gaps := 0
	tick := time.NewTicker(protocol.FrameDuration)
	defer tick.Stop()
	sent := 0
	for len(got)+gaps < len(pkts) && ctx.Err() == nil {
		<-tick.C
		if sent < len(pkts) {
			if err := c.Send(pkts[sent], lost[sent]); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		p, err := u.Next()
		switch {
		case errors.Is(err, loa.ErrGap):
			if len(got) > 0 {
				gaps++
			}
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, append([]byte(nil), p...))
		}
	}
	// What came is the client's, in order from the first packet given
	// (the buffer keeps only its depth of what came before the first
	// pull), and only its lost packets are missing.
	if len(got) == 0 {
		t.Fatal("nothing came through")
	}
	first := -1
	for i, p := range pkts {
		if bytes.Equal(p, got[0]) {
			first = i
			break
		}
	}
	if first < 0 || first > DefaultDepth+2 {
		t.Fatalf("the first packet given is the client's %d", first)
	}
	k := 0
	for i := first; i < len(pkts) && k < len(got); i++ {
		if lost[i] {
			continue
		}
		if !bytes.Equal(got[k], pkts[i]) {
			t.Fatalf("packet %d of the uplink differs from the client's %d", k, i)
		}
		k++
	}
	if k < len(pkts)-first-len(lost)-DefaultDepth-2 {
		t.Fatalf("%d of %d packets came through", k, len(pkts)-first-len(lost))
	}
	if st := u.Stats(); st.Lost != len(lost) || u.Transcoded() {
		t.Errorf("stats %+v transcoded %v; want %d lost, forwarded", st, u.Transcoded(), len(lost))
	}
	for ctx.Err() == nil && len(c.ReceiverReports()) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	rrs := c.ReceiverReports()
	if len(rrs) == 0 {
		t.Fatal("no receiver report reached the client")
	}
	t.Logf("receiver reports: %+v", rrs)
	for _, rr := range rrs {
		if rr.FractionLost < receiversLoss {
			t.Errorf("a receiver report's fraction lost is %d, want at least the receivers' %d", rr.FractionLost, receiversLoss)
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-u.Done()
	if u.Reason() != ReasonEnded {
		t.Errorf("reason %q", u.Reason())
	}
}

// TestUplinkLostWhenSilent: a client that stops sending ends its uplink
// as lost.
func TestUplinkLostWhenSilent(t *testing.T) {
	_, h, hs := newTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := Dial(ctx, hs.Client(), hs.URL+"/whip", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup()
	if err := c.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range tone(t, 440, 5) {
		c.Send(p, false)
	}
	select {
	case <-h.uplink().Done():
	case <-ctx.Done():
		t.Fatal("the uplink did not end")
	}
	if r := h.uplink().Reason(); r != ReasonLost {
		t.Errorf("reason %q, want %q", r, ReasonLost)
	}
	m := h.s.metrics
	if got := value(m.ended.WithLabelValues(ReasonLost)); got != 1 {
		t.Errorf("uplinks ended lost: %v, want 1", got)
	}
	if got, rx := value(m.uplinks), value(m.received); got != 0 || rx != 5 {
		t.Errorf("uplinks %v (want 0), packets received %v (want 5)", got, rx)
	}
}

// TestUplinkTranscodesWhatCannotBeForwarded: a client sending 60 ms
// packets (not the receivers' 20 ms) is decoded and encoded again as 20 ms
// mono frames that still carry its tone, and the uplink says so.
func TestUplinkTranscodesWhatCannotBeForwarded(t *testing.T) {
	_, h, hs := newTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := Dial(ctx, hs.Client(), hs.URL+"/whip", "", "minptime=60;useinbandfec=1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup()
	if err := c.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	u := h.uplink()
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppAudio)
	if err != nil {
		t.Fatal(err)
	}
	enc.SetBitrate(32000)
	const hz = 880
	pcm := make([]int16, 3*protocol.FrameSamples)
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	tick := time.NewTicker(protocol.FrameDuration)
	defer tick.Stop()
	for f := 0; ctx.Err() == nil && len(out) < 50*protocol.FrameSamples; f++ {
		<-tick.C
		if f%3 == 0 {
			for i := range pcm {
				pcm[i] = int16(9000 * math.Sin(2*math.Pi*hz*float64(f*protocol.FrameSamples+i)/protocol.ClockRate))
			}
			b := make([]byte, 4000)
			k, err := enc.Encode(pcm, b)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := packetDuration(b[:k]); d != 3*protocol.FrameSamples {
				t.Fatalf("the client's packet lasts %d samples", d)
			}
			c.Send(b[:k], false)
		}
		p, err := u.Next()
		if err != nil {
			continue
		}
		if !forwardable(p) {
			t.Fatalf("a frame of %d bytes given is not 20 ms mono", len(p))
		}
		buf := make([]int16, protocol.FrameSamples)
		n, err := dec.Decode(p, buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
	}
	if !u.Transcoded() {
		t.Error("the uplink does not say it transcodes")
	}
	// The tone is still the client's.
	tail := out[len(out)-20*protocol.FrameSamples:]
	if f := strongest(tail, []float64{440, 880, 1760}); f != hz {
		t.Errorf("transcoded audio's tone is %v Hz, want %v", f, hz)
	}
}

// strongest is the one of freqs with the most power in pcm (Goertzel).
func strongest(pcm []int16, freqs []float64) float64 {
	best, bestP := 0.0, -1.0
	for _, f := range freqs {
		w := 2 * math.Pi * f / protocol.ClockRate
		coeff := 2 * math.Cos(w)
		var s1, s2 float64
		for _, v := range pcm {
			s := float64(v) + coeff*s1 - s2
			s2, s1 = s1, s
		}
		if p := s1*s1 + s2*s2 - coeff*s1*s2; p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// TestAnswerPinsTheProfileAndNamesThePublicAddress: behind a 1:1 NAT the
// answer's candidates carry the public address on the one port, and the
// answer pins the receivers' Opus profile.
func TestAnswerPinsTheProfileAndNamesThePublicAddress(t *testing.T) {
	s, err := New(Config{Bind: "127.0.0.1:0", Public: []string{"203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	u, answer, err := s.Accept(ctx, offer.SDP, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	port := fmt.Sprint(s.LocalAddr().Port())
	for _, want := range []string{"203.0.113.7 " + port + " typ host", "useinbandfec=1", "usedtx=0", "stereo=0", "maxaveragebitrate=32000", "a=ptime:20", "opus/48000/2"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "127.0.0.1 "+port) {
		t.Errorf("answer names the private address:\n%s", answer)
	}
	// Not Opus, not SDP: refused with a clear code.
	if _, _, err := s.Accept(ctx, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n", Options{}); loa.ErrorCode(err) != loa.EUNSUPPORTED {
		t.Errorf("a PCMU-only offer: %v, want EUNSUPPORTED", err)
	}
	if _, _, err := s.Accept(ctx, "hello", Options{}); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("not SDP: %v, want EINVALID", err)
	}
}

// value reads a counter's or a gauge's value.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
