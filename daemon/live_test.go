package daemon

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/live"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// liveTones are the tone sequence a live speaker sends, 600 ms each,
// between a lead-in and a lead-out tone.
var liveTones = []float64{500, 1000, 1500, 2000}

const liveLeadHz = 300

// opusTone encodes frames of a sine at hz, continuing phase from frame
// first, as a browser's encoder would.
type toneEncoder struct {
	enc *opus.Encoder
	n   int // frames encoded
}

func newToneEncoder(t *testing.T) *toneEncoder {
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	enc.SetBitrate(32000)
	enc.SetInBandFEC(true)
	enc.SetPacketLossPerc(5)
	return &toneEncoder{enc: enc}
}

func (e *toneEncoder) frame(t *testing.T, hz float64) []byte {
	pcm := make([]int16, protocol.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(12000 * math.Sin(2*math.Pi*hz*float64(e.n*protocol.FrameSamples+i)/protocol.ClockRate))
	}
	e.n++
	b := make([]byte, 1275)
	k, err := e.enc.Encode(pcm, b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:k]
}

// toneOf names which of freqs dominates pcm (Goertzel at each), or 0 when
// the window is quiet.
func toneOf(pcm []int16, freqs []float64) float64 {
	var energy float64
	for _, v := range pcm {
		energy += float64(v) * float64(v)
	}
	if math.Sqrt(energy/float64(len(pcm))) < 1000 {
		return 0
	}
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

// rtpTap is a plain SDP listener of a session: what the controller
// forwards, as it leaves.
type rtpTap struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts [][]byte
	done chan struct{}
}

func newTap(t *testing.T) *rtpTap {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tap := &rtpTap{conn: c, done: make(chan struct{})}
	go func() {
		defer close(tap.done)
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if n < 2 || buf[1] >= 192 && buf[1] <= 223 || p.Unmarshal(buf[:n]) != nil {
				continue // RTCP
			}
			tap.mu.Lock()
			tap.pkts = append(tap.pkts, append([]byte(nil), p.Payload...))
			tap.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-tap.done })
	return tap
}

func (tap *rtpTap) payloads() [][]byte {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return slices.Clone(tap.pkts)
}

// TestLive: a WHIP client (pion: offer, trickle, DELETE) speaks a tone
// sequence with 5 % uplink loss to 20 receivers: every receiver plays the
// tones in order, the controller forwards the client's payloads byte for
// byte (no transcoding), the recording lands in the media library and
// the play log's end line links it; a client that hangs up without DELETE
// ends its session as uplink lost.
func TestLive(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 20})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}
	endpoint := s.m.URL() + "/api/v1/live?areas=p&priority=150&record=1"
	c, err := live.Dial(ctx, hc, endpoint, s.m.AdminToken, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup()
	if err := c.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	id := c.Resource[strings.LastIndexByte(c.Resource, '/')+1:]
	sess, err := s.api.Session(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Origin.Kind != loa.OriginLive || len(sess.Devices) != 20 || sess.Priority != 150 {
		t.Fatalf("live session %+v", sess)
	}
	tap := newTap(t)
	if err := s.api.Do(ctx, "GET", fmt.Sprintf("/api/v1/sessions/%s/sdp?dest=%s&plain=1", id, tap.conn.LocalAddr()), "", nil, nil); err != nil {
		t.Fatalf("listener: %v", err)
	}

	enc := newToneEncoder(t)
	var sent [][]byte // what the client sent (not the lost ones)
	tick := time.NewTicker(protocol.FrameDuration)
	defer tick.Stop()
	n := 0
	send := func(hz float64) {
		<-tick.C
		p := enc.frame(t, hz)
		lose := n%20 == 7 // 5 %
		n++
		if err := c.Send(p, lose); err != nil {
			t.Fatal(err)
		}
		if !lose {
			sent = append(sent, p)
		}
	}
	// The lead-in until the session is on air (its first packet left,
	// past the receivers' pre-roll), and a little more.
	for ctx.Err() == nil {
		send(liveLeadHz)
		if n%10 == 0 {
			if cur, err := s.api.Session(ctx, id); err == nil && !cur.FirstSentAt.IsZero() {
				break
			}
		}
	}
	for range 15 {
		send(liveLeadHz)
	}
	for _, hz := range liveTones {
		for range 30 {
			send(hz)
		}
	}
	// The lead-out until the last tone has left the controller and half a
	// second more (a loaded machine delays the uplink), then DELETE.
	last := sent[len(sent)-1]
	for ctx.Err() == nil {
		send(liveLeadHz)
		got := tap.payloads()
		if i := slices.IndexFunc(got, func(p []byte) bool { return bytes.Equal(p, last) }); i >= 0 && len(got)-i > 25 {
			break
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	end := s.finish(sess, 5*time.Second, "a", "b")
	if end.State != loa.SessionStopped || end.Reason != station.LiveEndedBySpeaker || end.Transcoded {
		t.Errorf("ended %s (%q), transcoded %v; want stopped (%q), forwarded", end.State, end.Reason, end.Transcoded, station.LiveEndedBySpeaker)
	}

	// Every receiver plays the tones in order.
	freqs := append([]float64{liveLeadHz}, liveTones...)
	for _, area := range []string{"a", "b"} {
		for _, r := range s.byArea[area] {
			pcm := r.PCM(id)
			// 100 ms windows; a tone counts when it holds for 300 ms (each
			// lasts 600 ms), so a window of concealment at a boundary does
			// not make one.
			var seq []float64
			run, cur := 0, 0.0
			for i := 0; i+4800 <= len(pcm); i += 4800 {
				f := toneOf(pcm[i:i+4800], freqs)
				if f != cur {
					run, cur = 0, f
				}
				if run++; run == 3 && f != 0 && f != liveLeadHz && (len(seq) == 0 || seq[len(seq)-1] != f) {
					seq = append(seq, f)
				}
			}
			if !slices.Equal(seq, liveTones) {
				st, _ := r.Session(id)
				t.Errorf("%s played the tones %v, want %v (%+v)", r.ID(), seq, liveTones, st)
			}
		}
	}

	// What left the controller is the client's packets as they were sent,
	// in order: not one byte re-encoded.
	got := tap.payloads()
	if len(got) < 80 {
		t.Fatalf("the listener got %d packets", len(got))
	}
	at := 0
	for k, p := range got {
		j := slices.IndexFunc(sent[at:], func(s []byte) bool { return bytes.Equal(s, p) })
		if j < 0 {
			t.Fatalf("forwarded packet %d is none of the client's (after its %d)", k, at)
		}
		at += j + 1
	}

	// The recording: in the library, linked by the session and its end line.
	if end.RecordingID == "" {
		t.Fatal("no recording")
	}
	rec, err := s.m.DB.Media(ctx, end.RecordingID)
	if err != nil || rec.Source != "live" || rec.Frames < 100 {
		t.Fatalf("recording %+v, %v", rec, err)
	}
	lines, err := station.NewPlayLog(s.m.DB).PlayLog(ctx, loa.PlayLogFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	linked := false
	for _, e := range lines {
		if e.SessionID == id && e.Event == loa.PlayStopped {
			linked = e.RecordingID == end.RecordingID && e.Detail == station.LiveEndedBySpeaker
		}
	}
	if !linked {
		t.Errorf("the play log's end line of %s does not link its recording %s", id, end.RecordingID)
	}

	// A second speaker, in commune a: preempted by a higher session, its
	// receivers rejoin it when that ends; then it hangs up without DELETE,
	// and the session ends, uplink lost.
	bulletin := s.upload(media.Tone(700, 48000, time.Second, 0.5), 48000)
	c2, err := live.Dial(ctx, hc, s.m.URL()+"/api/v1/live?areas=a", s.m.AdminToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	id2 := c2.Resource[strings.LastIndexByte(c2.Resource, '/')+1:]
	speakUntil := func(what string, done func() bool) {
		t.Helper()
		for ctx.Err() == nil && !done() {
			<-tick.C
			c2.Send(enc.frame(t, 440), false)
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
	decoded := func() (least uint64) {
		least = math.MaxUint64
		for _, r := range s.byArea["a"] {
			st, _ := r.Session(id2)
			least = min(least, st.Decoded)
		}
		return least
	}
	speakUntil("commune a hearing the speaker", func() bool { return decoded() > 10 })
	high, err := s.api.StartSession(ctx, api.SessionRequest{MediaID: bulletin.ID, Targets: loa.Targets{Areas: []string{"a"}}, Priority: 200})
	if err != nil {
		t.Fatal(err)
	}
	speakUntil("the bulletin to end", func() bool {
		cur, err := s.api.Session(ctx, high.ID)
		return err == nil && cur.State != loa.SessionPlaying
	})
	before := decoded()
	speakUntil("commune a hearing the speaker again", func() bool { return decoded() > before+10 })
	preempted := false
	lines, err = station.NewPlayLog(s.m.DB).PlayLog(ctx, loa.PlayLogFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lines {
		preempted = preempted || (e.SessionID == id2 && e.Event == loa.PlayPreempted)
	}
	if !preempted {
		t.Error("the play log has no preempted line for the live session")
	}
	c2.Hangup()
	end2, err := s.api.WaitSession(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	if end2.State != loa.SessionStopped || end2.Reason != station.LiveUplinkLost {
		t.Errorf("a hung-up client's session ended %s (%q), want stopped (%q)", end2.State, end2.Reason, station.LiveUplinkLost)
	}
}
