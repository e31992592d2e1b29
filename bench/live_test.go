package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa/protocol"
)

// The clicks survive Opus: a decoder finds each sent click where it was
// put (plus the codec's delay), names it by its pitch, and finds no click
// where none was sent.
func TestLiveClicksThroughOpus(t *testing.T) {
	pcm, clicks := clickSignal(int(12 * time.Second / protocol.FrameDuration))
	packets, err := encodeClicks(pcm)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	frame := make([]int16, protocol.FrameSamples)
	for _, p := range packets {
		n, err := dec.Decode(p, frame)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame[:n]...)
	}
	onsets := findClicks(out)
	if len(onsets) != sentClicks(clicks) || sentClicks(clicks) != clicks-1 {
		t.Fatalf("found %d clicks, want %d: %+v", len(onsets), sentClicks(clicks), onsets)
	}
	prev, prevIdx := -1, 0
	for _, o := range onsets {
		k := clickIndex(o, prev, prevIdx)
		if k == skipClick {
			t.Errorf("the click never sent was found at %d", o.Idx)
		}
		// The encoder's look-ahead delays the output by a few ms.
		if d := o.Idx - clickFrame(k)*protocol.FrameSamples; d < 0 || d > 480 {
			t.Errorf("click %d found %d samples after where it was put", k, d)
		}
		prev, prevIdx = k, o.Idx
	}
	// The tap: the packets from ts 1000 on, two dropped as gaps (not
	// the clicks'), sent in a shuffled order.
	var pkts []tapPacket
	for i, p := range packets {
		if i == 10 || i == 11 {
			continue
		}
		pkts = append(pkts, tapPacket{seq: uint16(65000 + i), ts: uint32(1000 + i*protocol.FrameSamples), payload: p})
	}
	pkts[3], pkts[40] = pkts[40], pkts[3]
	clickTS, control, err := tapClicks(pkts, clicks)
	if err != nil || control || len(clickTS) != sentClicks(clicks) {
		t.Fatalf("tap: %d clicks, control %v, %v", len(clickTS), control, err)
	}
	// A receiver that played them all, its first sample at ts 1000 at t0:
	// the latency of each is its place in the stream less its send time.
	t0 := time.Unix(1000, 0)
	lr := liveRun{sent: make([]time.Time, len(packets)), clickTS: clickTS}
	for i := range lr.sent {
		lr.sent[i] = t0.Add(time.Duration(i)*protocol.FrameDuration - 50*time.Millisecond)
	}
	rx := liveRx{ID: "rx", FirstAtNs: t0.UnixNano(), FirstTS: 1000, Played: uint64(len(packets)), Onsets: onsets}
	// A decoder that skipped slots: its indices fall short past them.
	skipper := rx
	skipper.ID, skipper.Skipped, skipper.Onsets = "skipper", 50, nil
	for _, o := range onsets {
		skipper.Onsets = append(skipper.Onsets, liveOnset{Idx: o.Idx - 50*protocol.FrameSamples, Freq: o.Freq})
	}
	// One that joined late plays only the later clicks.
	late := liveRx{ID: "late", FirstAtNs: t0.Add(5 * time.Second).UnixNano(), FirstTS: 1000 + 5*protocol.ClockRate, Played: uint64(len(packets) - 250)}
	res := liveLatency([]liveRx{rx, skipper, late}, lr, clicks)
	n := sentClicks(clicks)
	if len(res.reported) != 2 || res.found != n || res.control != 0 || res.decoders != 2 || res.pairs != 2*n || res.agreed != n {
		t.Fatalf("reported %v, found %d, control %d, decoders %d, pairs %d, agreed %d", res.reported, res.found, res.control, res.decoders, res.pairs, res.agreed)
	}
	if len(res.lat) <= 2*n {
		t.Errorf("%d latencies, want the late receiver's too", len(res.lat))
	}
	for _, l := range res.lat {
		if l < 50 || l > 60 {
			t.Errorf("latency %.1f ms, want 50 ms + the codec's delay", l)
		}
	}
	// A burst whose pitch does not fit its place is no click.
	if k := clickIndex(liveOnset{Idx: onsets[1].Idx, Freq: clickFreq(7)}, 0, onsets[0].Idx); k != -1 {
		t.Errorf("a 1 s later burst at click 7's pitch was taken for click %d", k)
	}
}

// TestBenchLive runs "loa bench live" end to end at a tiny scale — the
// controller and a pion WHIP client here, a few receivers in a child
// process — so the benchmark cannot rot. It checks the figures are there
// and consistent, never how fast anything was.
func TestBenchLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process of receivers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 4
	b := liveBench{
		Receivers: n, Decode: 2, For: 8 * time.Second, Seed: 1, Online: time.Minute,
		UpBase: 30 * time.Millisecond, JitterMedian: 10 * time.Millisecond, JitterP99: 80 * time.Millisecond,
		Child: func(ctx context.Context) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchLiveReceiversChild$")
			cmd.Env = append(os.Environ(), "LOA_BENCH_LIVE_CHILD=1")
			return cmd, nil
		},
	}
	var out bytes.Buffer
	var errs lockedBuffer
	res, err := benchLiveRun(ctx, b, &out, &errs)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	t.Logf("\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"receivers", "reported", "latency_ms_p50", "latency_ms_p99", "playout_delay_ms", "transcoded", "cpu_s_per_receiver_hour", "cpu_s_per_receiver_hour_recorded"} {
		if _, ok := last[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	num := func(k string) float64 { f, _ := last[k].(float64); return f }
	_, clicks := clickSignal(int(b.For / protocol.FrameDuration))
	if num("receivers") != n || num("reported") < 1 || num("reported") > n {
		t.Errorf("receivers %v, reported %v: want %d, and 1..%d", last["receivers"], last["reported"], n, n)
	}
	// The uplink may lose a late click on a loaded machine; the control
	// click, never sent, is never found.
	sent := float64(sentClicks(clicks))
	if found := num("clicks_found"); num("clicks") != sent || found < sent/2 || found > sent || num("control_found") != 0 {
		t.Errorf("%v of %v clicks found (want %v), control found by %v: want most, and none", found, last["clicks"], sent, last["control_found"])
	}
	if p50, p99 := num("latency_ms_p50"), num("latency_ms_p99"); p50 <= 0 || p50 > p99 {
		t.Errorf("latency p50 %v, p99 %v: want 0 < p50 ≤ p99", p50, p99)
	}
	if last["transcoded"] != false || num("cpu_s_per_receiver_hour") <= 0 || num("cpu_s_per_receiver_hour_recorded") <= 0 {
		t.Errorf("transcoded %v, CPU live %v, recorded %v: want false and both > 0", last["transcoded"], last["cpu_s_per_receiver_hour"], last["cpu_s_per_receiver_hour_recorded"])
	}
	if res["receivers"] != n {
		t.Errorf("returned figures %v differ from the printed line", res)
	}
}

// TestBenchLiveReceiversChild is the receivers' process of TestBenchLive
// (the test binary re-executed), not a test of its own.
func TestBenchLiveReceiversChild(t *testing.T) {
	if os.Getenv("LOA_BENCH_LIVE_CHILD") != "1" {
		t.Skip("runs only as TestBenchLive's child process")
	}
	if err := benchLiveReceivers(context.Background(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}
