package media

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// relayListener pulls a relay's packets at the session's pace (one per
// 20 ms) and decodes them, as a receiver would.
type relayListener struct {
	mu  sync.Mutex
	pcm []float64
}

func (l *relayListener) run(t *testing.T, r *Relay, stop <-chan struct{}) {
	tick := time.NewTicker(protocol.FrameDuration)
	defer tick.Stop()
	var pkts [][]byte
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		pkt, err := r.Next()
		if err != nil {
			return
		}
		pkts = append(pkts, append([]byte(nil), pkt...))
		if len(pkts) == 10 {
			pcm, err := DecodePackets(pkts)
			if err != nil {
				t.Error(err)
				return
			}
			l.mu.Lock()
			for _, v := range pcm {
				l.pcm = append(l.pcm, float64(v)/32768)
			}
			l.mu.Unlock()
			pkts = pkts[:0]
		}
	}
}

// hears reports whether the last 200 ms are dominated by freq.
func (l *relayListener) hears(freq float64, others ...float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pcm) < 9600 {
		return false
	}
	x := l.pcm[len(l.pcm)-9600:]
	p := power(x, protocol.ClockRate, freq)
	if p < 0.01 {
		return false
	}
	for _, f := range others {
		if power(x, protocol.ClockRate, f) > p/10 {
			return false
		}
	}
	return true
}

// fallbackTone is a fallback media item: 2 s of a tone, looped.
func fallbackTone(t *testing.T, freq float64) func() (loa.PacketSource, io.Closer, error) {
	pcm := toInt16(tone(protocol.ClockRate, 1, 2, freq, 0.3))
	enc, err := newEncoder(DefaultBitrate)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	buf := make([]byte, maxPacketBytes)
	for i := 0; i+protocol.FrameSamples <= len(pcm); i += protocol.FrameSamples {
		n, err := enc.Encode(pcm[i:i+protocol.FrameSamples], buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), buf[:n]...))
	}
	return func() (loa.PacketSource, io.Closer, error) {
		return &slicePackets{pkts: pkts}, io.NopCloser(nil), nil
	}
}

type slicePackets struct {
	pkts [][]byte
	i    int
}

func (s *slicePackets) Next() ([]byte, error) {
	if s.i == len(s.pkts) {
		return nil, io.EOF
	}
	s.i++
	return s.pkts[s.i-1], nil
}

// TestRelayFailsOverAndBack relays an MP3 stream over HTTP through real
// ffmpeg children: the primary's tone plays; killing it switches to the
// backup URL's tone, killing that to the fallback's, and reviving the
// primary brings it back; each switch is told.
func TestRelayFailsOverAndBack(t *testing.T) {
	needFFmpeg(t)
	primary, backup := loatest.StartToneStream(t, 440), loatest.StartToneStream(t, 1000)
	var mu sync.Mutex
	var switches []RelaySwitch
	r, err := StartRelay(RelayOptions{
		URLs: []string{primary.URL(), backup.URL()}, Fallback: fallbackTone(t, 2500),
		SilenceFor: 2 * time.Second, StallFor: 2 * time.Second, ReturnAfter: time.Second, Buffer: 300 * time.Millisecond,
		OnSwitch: func(s RelaySwitch) { mu.Lock(); switches = append(switches, s); mu.Unlock() },
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var l relayListener
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.run(t, r, stop) }()
	defer func() { close(stop); wg.Wait(); r.Close() }()

	tones := []float64{440, 1000, 2500}
	wait := func(what string, freq float64, cond func(RelayState) bool) {
		t.Helper()
		var others []float64
		for _, f := range tones {
			if f != freq {
				others = append(others, f)
			}
		}
		loatest.Eventually(t, 20*time.Second, func() bool { return l.hears(freq, others...) && cond(r.State()) }, what)
	}
	wait("the primary's tone", 440, func(s RelayState) bool { return s.Current == 0 && s.Codec == "mp3" && s.LevelDB > -30 })
	primary.Kill()
	wait("the backup's tone", 1000, func(s RelayState) bool { return s.Current == 1 && s.URL == backup.URL() })
	backup.Kill()
	wait("the fallback's tone", 2500, func(s RelayState) bool { return s.Current == RelayFallback })
	primary.Revive()
	wait("the primary's tone again", 440, func(s RelayState) bool { return s.Current == 0 && s.Failovers >= 2 })

	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		from, to int
		reason   string
	}{{0, 1, "stalled"}, {1, RelayFallback, "stalled"}, {RelayFallback, 0, "returned"}}
	// A loaded machine may have been slow enough to start the primary
	// that it failed over and back first: the last three count.
	if len(switches) < len(want) {
		t.Fatalf("switches %+v", switches)
	}
	last := switches[len(switches)-len(want):]
	for i, w := range want {
		if s := last[i]; s.From != w.from || s.To != w.to || s.Reason != w.reason {
			t.Errorf("switch %d: %+v, want %+v", i, s, w)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
