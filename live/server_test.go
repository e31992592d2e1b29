package live

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"

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
}
