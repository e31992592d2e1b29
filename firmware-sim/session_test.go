package firmwaresim

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// playSession sends a play to dev, checks accepted then done, and waits
// until the receiver authenticated with its RTCP.
func playSession(t *testing.T, rec *recorder, st *streamer, dev string, recvSSRC uint32) {
	t.Helper()
	id := rec.send(t, dev, protocol.OpPlay, st.playArgs(dev, recvSSRC), time.Now().Add(time.Minute))
	rec.ack(t, dev, id, protocol.AckAccepted)
	if a := rec.finalAck(t, dev, id); a.State != protocol.AckDone {
		t.Fatalf("play ack %+v, want done", a)
	}
	st.waitReceivers(t, 1)
}

func waitDone(t *testing.T, r *Receiver, session string) SessionStats {
	t.Helper()
	var st SessionStats
	loatest.Eventually(t, waitLimit, func() bool {
		var ok bool
		st, ok = r.Session(session)
		return ok && st.Done
	}, fmt.Sprintf("session %s done", session))
	return st
}

func TestPlayDecodesTone(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir})
	const frames = 100
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 0xbeef01)

	// The first report opened the NAT: RTP goes to where it came from.
	first := st.waitReport(t, "rx1", func(rtcpReport) bool { return true })
	if len(first.rr.Reports) != 0 {
		t.Fatalf("first report has %d report blocks before any packet", len(first.rr.Reports))
	}
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	st.bye()

	fin := rec.event(t, "rx1", protocol.EventFinished, "s1")
	rec.event(t, "rx1", protocol.EventPlayed, "s1")
	stats := waitDone(t, r, "s1")
	if stats.EndReason != EndBye {
		t.Errorf("end reason %q, want bye", stats.EndReason)
	}
	if stats.Expected != frames || stats.Played != frames || stats.Decoded != frames || stats.Received != frames {
		t.Errorf("stats %+v, want %d expected, received, played and decoded", stats, frames)
	}
	if stats.Lost+stats.Late+stats.Concealed+stats.FECRecovered+stats.Corrupt+stats.Duplicate != 0 {
		t.Errorf("clean stream reported impairments: %+v", stats)
	}
	if fin.Stream == nil || *fin.Stream != stats.StreamStats() {
		t.Errorf("finished event stream %+v, want %+v", fin.Stream, stats.StreamStats())
	}

	pcm := r.PCM("s1")
	if len(pcm) != frames*protocol.FrameSamples {
		t.Fatalf("pcm has %d samples, want %d", len(pcm), frames*protocol.FrameSamples)
	}
	mid := pcm[len(pcm)/4 : 3*len(pcm)/4]
	tone := goertzel(mid, 1000)
	for _, f := range []float64{300, 700, 1300, 2000, 3000, 5000} {
		if p := goertzel(mid, f); p*100 > tone {
			t.Errorf("power at %.0f Hz is %.3g, 1 kHz only %.3g", f, p, tone)
		}
	}

	wav, err := os.ReadFile(filepath.Join(dir, "rx1-s1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if len(wav) != wavHeaderLen+2*len(pcm) || string(wav[:4]) != "RIFF" ||
		binary.LittleEndian.Uint32(wav[40:]) != uint32(2*len(pcm)) {
		t.Errorf("wav of %d bytes, header %q, want %d", len(wav), wav[:12], wavHeaderLen+2*len(pcm))
	}
	if got := int16(binary.LittleEndian.Uint16(wav[wavHeaderLen+2*1000:])); got != pcm[1000] {
		t.Errorf("wav sample 1000 = %d, pcm has %d", got, pcm[1000])
	}

	// The receiver said goodbye with a report of the whole stream.
	bye := st.waitReport(t, "rx1", func(r rtcpReport) bool { return r.bye })
	if len(bye.rr.Reports) != 1 {
		t.Fatalf("bye carries %d report blocks", len(bye.rr.Reports))
	}
	rb := bye.rr.Reports[0]
	wantSeq := uint32(st.seq0) + frames - 1 // crosses the 16-bit wrap: one cycle
	if rb.SSRC != st.ssrc || rb.LastSequenceNumber != wantSeq || rb.TotalLost != 0 || rb.LastSenderReport == 0 {
		t.Errorf("report block %+v, want highest seq %d, no loss, the SR echoed", rb, wantSeq)
	}
}

func TestPlayWithLossAndJitter(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true,
		Impair: Impairment{Loss: 0.05, Jitter: 40 * time.Millisecond, Seed: 7}})
	const frames = 200
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)
	st.stream(context.Background(), seq(frames))
	st.bye()

	stats := waitDone(t, r, "s1")
	t.Logf("%+v", stats)
	if stats.Lost == 0 || stats.Concealed+stats.FECRecovered == 0 || stats.FECRecovered == 0 {
		t.Errorf("5%% loss left no trace: %+v", stats)
	}
	if stats.Played != uint64(stats.Expected) || stats.Expected < frames-5 {
		t.Errorf("played %d of %d expected (%d sent)", stats.Played, stats.Expected, frames)
	}
	// The delay D absorbs 40 ms of jitter: every loss is a real loss.
	if stats.Late != 0 || stats.Concealed+stats.FECRecovered != stats.Lost || stats.Decoded != stats.Received {
		t.Errorf("stats %+v: concealed+fec should equal lost, decoded equal received", stats)
	}
	if stats.JitterMs <= 0 {
		t.Errorf("jitter %.2f ms with 40 ms impairment", stats.JitterMs)
	}
	if got := len(r.PCM("s1")); got != int(stats.Played)*protocol.FrameSamples {
		t.Errorf("pcm has %d samples for %d frames", got, stats.Played)
	}
	rb := st.waitReport(t, "rx1", func(r rtcpReport) bool { return r.bye }).rr.Reports[0]
	if uint64(rb.TotalLost) != stats.Lost || rb.Jitter == 0 {
		t.Errorf("report block %+v, want %d lost and jitter", rb, stats.Lost)
	}
}

func TestJitterBufferReordersAndCounts(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, Impair: Impairment{Reorder: 0.2, Seed: 3}})
	const frames = 120
	// Plain RTP: under SRTP a repeated packet is a replay (auth_failures,
	// see TestReplayedPacketsDropped), not a duplicate.
	st := newPlainStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)

	// The controller's side swaps neighbours too, repeats some packets,
	// holds frame 10 back until its slot has passed, and adds noise.
	order := []int{}
	for i := 0; i < frames; i++ {
		switch {
		case i == 10:
			continue
		case i%17 == 5 && i+1 < frames:
			order = append(order, i+1, i)
			i++
		case i%23 == 0:
			order = append(order, i, i)
		default:
			order = append(order, i)
		}
	}
	st.sendAll([]byte("not rtp at all"))
	foreign := st.packet(3)
	foreign[8] ^= 0xff // another SSRC: not this stream
	st.sendAll(foreign)
	st.stream(context.Background(), order)
	waitPlayed(t, r, "s1", 12)
	st.sendAll(st.packet(10))
	st.bye()

	stats := waitDone(t, r, "s1")
	t.Logf("%+v", stats)
	if stats.Expected != frames || stats.Played != frames || stats.Received != frames || stats.Lost != 0 {
		t.Errorf("stats %+v, want all %d frames received and played", stats, frames)
	}
	if stats.Late != 1 || stats.Decoded != frames-1 || stats.Concealed+stats.FECRecovered != 1 {
		t.Errorf("stats %+v, want frame 10 late and concealed, the rest decoded", stats)
	}
	if dups := uint64(len(order) + 1 - frames); stats.Duplicate != dups || stats.Corrupt != 1 {
		t.Errorf("stats %+v, want %d duplicates and 1 corrupt", stats, dups)
	}
}

func TestVerifyWithoutDecoding(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: false, KeepPCM: true})
	const frames = 60
	st := newStreamer(t, "s1", frames)
	st.frames[20] = []byte{0x03, 0x00}                     // code 3 with no frames: not Opus
	st.frames[30] = append([]byte{0x10}, st.frames[30]...) // a 40 ms SILK frame: off the profile
	playSession(t, rec, st, "rx1", 1)
	st.stream(context.Background(), seq(frames))
	st.bye()

	stats := waitDone(t, r, "s1")
	if stats.Decoded != 0 || stats.Played != frames || stats.Expected != frames {
		t.Errorf("stats %+v, want %d played, none decoded", stats, frames)
	}
	if stats.Corrupt != 2 || stats.Concealed != 2 || stats.FromPacket() != frames-2 {
		t.Errorf("stats %+v, want the 2 bad packets corrupt and concealed", stats)
	}
	if pcm := r.PCM("s1"); pcm != nil {
		t.Errorf("kept %d samples without decoding", len(pcm))
	}
	rec.event(t, "rx1", protocol.EventPlayed, "s1")
}

func TestStopEndsWithinOneSlot(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true})
	const frames = 500
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)
	ctx, cancel := context.WithCancel(context.Background())
	streamed := make(chan struct{})
	go func() { defer close(streamed); st.stream(ctx, seq(frames)) }()
	defer func() { cancel(); <-streamed }()

	rec.event(t, "rx1", protocol.EventPlayed, "s1")
	id := rec.send(t, "rx1", protocol.OpStop, protocol.StopArgs{Session: "s1"}, time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone || a.Msg != "" {
		t.Fatalf("stop ack %+v", a)
	}
	// The session ended before the ack went out.
	stats, _ := r.Session("s1")
	if !stats.Done || stats.EndReason != EndStop {
		t.Fatalf("after stop ack: %+v", stats)
	}
	s := r.find("s1")
	if stats.Played > s.stopPlayed+1 {
		t.Errorf("played %d slots, stop came after %d", stats.Played, s.stopPlayed)
	}
	if stats.Played >= uint64(stats.Expected) {
		t.Errorf("stop should cut the buffered frames: %+v", stats)
	}
	rec.event(t, "rx1", protocol.EventFinished, "s1")
	st.waitReport(t, "rx1", func(r rtcpReport) bool { return r.bye })

	// Stopping again is harmless.
	id = rec.send(t, "rx1", protocol.OpStop, protocol.StopArgs{Session: "s1"}, time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone || a.Msg != "not playing" {
		t.Errorf("second stop ack %+v", a)
	}
}

func TestPlayPreemptsOtherSession(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	a := newStreamer(t, "low", 10)
	b := newStreamer(t, "high", 10)
	playSession(t, rec, a, "rx1", 1)

	// The same play again (a controller retry) changes nothing.
	id := rec.send(t, "rx1", protocol.OpPlay, a.playArgs("rx1", 1), time.Now().Add(time.Minute))
	if ack := rec.finalAck(t, "rx1", id); ack.State != protocol.AckDone || ack.Msg != "already playing" {
		t.Errorf("repeated play ack %+v", ack)
	}
	playSession(t, rec, b, "rx1", 2)
	low, _ := r.Session("low")
	if !low.Done || low.EndReason != EndPreempted {
		t.Errorf("low after high: %+v", low)
	}
	ss := r.Sessions()
	if len(ss) != 2 || ss[0].Session != "low" || ss[1].Session != "high" || ss[1].Done {
		t.Errorf("sessions %+v", ss)
	}
	rec.event(t, "rx1", protocol.EventFinished, "low")

	// A BYE before any packet ends the session at once.
	b.bye()
	if high := waitDone(t, r, "high"); high.EndReason != EndBye || high.Played != 0 {
		t.Errorf("high after bye: %+v", high)
	}
}

// Two receivers whose first packets arrive at different times play the
// stream at the same instants, because both follow the sender clock.
func TestSenderClockSyncsReceivers(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	a := startReceiver(t, Config{ID: "rxa", Broker: broker})
	b := startReceiver(t, Config{ID: "rxb", Broker: broker, Impair: Impairment{Jitter: 100 * time.Millisecond, Seed: 1}})
	const frames = 20
	st := newStreamer(t, "s1", frames)
	for i, dev := range []string{"rxa", "rxb"} {
		id := rec.send(t, dev, protocol.OpPlay, st.playArgs(dev, uint32(i+1)), time.Now().Add(time.Minute))
		rec.ack(t, dev, id, protocol.AckDone)
	}
	st.waitReceivers(t, 2)
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	st.bye()
	waitDone(t, a, "s1")
	waitDone(t, b, "s1")

	sa, sb := a.find("s1"), b.find("s1")
	sa.mu.Lock()
	sb.mu.Lock()
	defer sa.mu.Unlock()
	defer sb.mu.Unlock()
	// Play-out times of the same frame (timestamp ts0 of each).
	at := func(s *session) time.Time {
		return s.base.Add(time.Duration(int32(s.ts0-st.ts0)) * time.Second / protocol.ClockRate)
	}
	arrivalAt := func(s *session) time.Time {
		return s.arrivalBase.Add(time.Duration(int32(s.ts0-st.ts0)) * time.Second / protocol.ClockRate)
	}
	skew := arrivalAt(sb).Sub(arrivalAt(sa))
	if skew < 2*time.Millisecond {
		t.Fatalf("the impairment did not delay rxb's first packet (%v): nothing to sync", skew)
	}
	if d := at(sb).Sub(at(sa)); d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("frame plays %v apart on rxa and rxb (first arrivals %v apart)", d, skew)
	}
}
