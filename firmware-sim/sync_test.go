package firmwaresim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// answerTime makes st a time-exchange responder as the shared design has
// it: to a report with an XR RRTR it answers at once, to that receiver
// only, SR (NTP = T3, the timeline's timestamp) + XR DLRR for its SSRC.
func answerTime(st *streamer, dev string, t0 time.Time) {
	st.onReport = func(rep rtcpReport) {
		if rep.rrtr == 0 || rep.bye {
			return
		}
		t2 := time.Now()
		t3 := time.Now()
		ts := st.ts0 + uint32(t3.Sub(t0)*protocol.ClockRate/time.Second)
		b, err := rtcp.Marshal([]rtcp.Packet{
			&rtcp.SenderReport{SSRC: st.ssrc, NTPTime: NTPTimestamp(t3), RTPTime: ts},
			&rtcp.ExtendedReport{SenderSSRC: st.ssrc, Reports: []rtcp.ReportBlock{&rtcp.DLRRReportBlock{
				Reports: []rtcp.DLRRReport{{SSRC: rep.rr.SSRC, LastRR: uint32(rep.rrtr >> 16),
					DLRR: uint32(t3.Sub(t2) * 65536 / time.Second)}}}}},
		})
		if err != nil {
			st.t.Error(err)
			return
		}
		st.sendTo(dev, b)
	}
}

// A receiver whose clock is 1.5 s off syncs to the controller over the
// XR exchange and plays its first sample at the timeline's instant, not at
// its packets' arrival: the controller's t0 is a second after it sent
// the first packet (so the packets, sent ahead of their timeline, must
// not be taken for down-leg readings of the offset), and the answers'
// Sender Reports map the clock only.
func TestTimelinePlaysAtTheSyncedInstant(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	const offset = 1500 * time.Millisecond
	const outDelay = 10 * time.Millisecond
	r := startReceiver(t, Config{ID: "rxt", Broker: broker, Clock: ClockSpec{Offset: offset, DriftPPM: 20, DACPPM: -30},
		OutputDelay: outDelay})
	const frames = 100
	st := newStreamer(t, "tl1", frames)
	t0 := time.Now().Add(time.Second).Truncate(time.Millisecond)
	answerTime(st, "rxt", t0)
	args := st.playArgs("rxt", 0x5ca1ab1e)
	args.T0Ms, args.TS0 = t0.UnixMilli(), st.ts0
	// The answers' packet count (0, before packet 0) must place no frame.
	args.EndFrame = frames - 1
	id := rec.send(t, "rxt", protocol.OpPlay, args, time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rxt", id); a.State != protocol.AckDone {
		t.Fatalf("play ack %+v", a)
	}
	st.waitReceivers(t, 1)
	loatest.Eventually(t, waitLimit, func() bool { return r.SyncReport().Source == protocol.SyncRTCPXR },
		"the receiver syncs over the XR exchange")
	st.stream(context.Background(), seq(frames))
	// The BYE's report is at the frame after the last, as the controller
	// puts it when it sent end_frame.
	bye, err := rtcp.Marshal([]rtcp.Packet{st.sr(time.Now(), st.ts0+frames*protocol.FrameSamples),
		&rtcp.Goodbye{Sources: []uint32{st.ssrc}}})
	if err != nil {
		t.Fatal(err)
	}
	st.sendAll(bye)
	stats := waitDone(t, r, "tl1")
	if stats.Played != frames {
		t.Errorf("played %d of %d frames", stats.Played, frames)
	}
	// Ground truth: the first sample leaves the DAC at t0 + D. Without the
	// timeline it would be a second earlier (at arrival + D).
	want := t0.Add(testDelayMs * time.Millisecond)
	if d := stats.FirstSampleAt.Sub(want); d < -250*time.Millisecond || d > 250*time.Millisecond {
		t.Errorf("first sample left the DAC %v from the timeline's instant", d)
	}
	rep := r.SyncReport()
	if math.Abs(rep.OffsetMs-offset.Seconds()*1e3) > 50 || rep.Resyncs != 0 {
		t.Errorf("sync report %+v: want an offset near %v and no re-sync", rep, offset)
	}
	tele := r.Telemetry()
	if tele.Sync == nil || tele.Sync.Source != protocol.SyncRTCPXR {
		t.Errorf("telemetry sync %+v", tele.Sync)
	}
}

func TestExchangeFromDLRR(t *testing.T) {
	t1 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// The controller's clock is 2 s ahead; 10 ms up, 30 ms down, 1 ms turnaround.
	t2 := t1.Add(2*time.Second + 10*time.Millisecond)
	t3 := t2.Add(time.Millisecond)
	t4 := t3.Add(-2*time.Second + 30*time.Millisecond)
	e := ExchangeFromDLRR(t1, NTPTimestamp(t3), uint32(time.Millisecond*65536/time.Second), t4)
	if d := e.Delay() - 40*time.Millisecond; d < -50*time.Microsecond || d > 50*time.Microsecond {
		t.Errorf("delay %v, want 40ms", e.Delay())
	}
	// Off by half the asymmetry: (10 − 30)/2.
	if d := e.Offset() - (2*time.Second - 10*time.Millisecond); d < -50*time.Microsecond || d > 50*time.Microsecond {
		t.Errorf("offset %v, want 1.99s", e.Offset())
	}
}

func TestPlayoutPlacesAndCorrects(t *testing.T) {
	origin := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// 10 ms early: padded with 480 samples of silence.
	p := NewPlayout(origin, PlayoutConfig{})
	if start := p.Frame(origin.Add(-10*time.Millisecond), 1, 960); start != -480 {
		t.Errorf("first frame starts at sample %d, want -480", start)
	}
	// 10 ms late: 480 samples dropped.
	p = NewPlayout(origin, PlayoutConfig{})
	if start := p.Frame(origin.Add(10*time.Millisecond), 1, 960); start != 480 {
		t.Errorf("first frame starts at sample %d, want 480", start)
	}
	// In its first seconds a play-out follows a young sync's 10 ms move
	// at once, without counting a re-sync.
	if start := p.Frame(origin.Add(40*time.Millisecond), 2, 960); start != 1920 || p.Resyncs != 0 {
		t.Errorf("after a 10 ms move: sample %d (want 1920), %d re-syncs", start, p.Resyncs)
	}
	// A DAC 1000 ppm fast against the clock: corrections, each of one
	// sample, at no more than 500 ppm, and no hard re-sync below 50 ms.
	p = NewPlayout(origin, PlayoutConfig{})
	now := origin
	const frames = 50 * 60
	step := 960 * float64(time.Second) / 48000 / 1.001
	for range frames {
		p.Frame(now, 1, 960)
		now = now.Add(time.Duration(step))
	}
	if max := frames * 960 * 500 / 1000000; p.Corrections > max || p.Corrections < max*95/100 {
		t.Errorf("%d corrections in a minute, want about the 500 ppm limit %d", p.Corrections, max)
	}
	if p.Resyncs != 0 || p.CorrectionsPerMin() != p.Corrections {
		t.Errorf("resyncs %d, corrections per min %d", p.Resyncs, p.CorrectionsPerMin())
	}
	// 100 ms off: one hard re-sync.
	p.Frame(now.Add(100*time.Millisecond), 2, 960)
	if p.Resyncs != 1 {
		t.Errorf("a 100 ms error: %d re-syncs, want 1", p.Resyncs)
	}
}

// A play with a timeline from a controller that answers no time request
// still plays, by the Sender Reports, once the receiver gives up waiting.
func TestTimelineWithoutAnswersFallsBack(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rxn", Broker: broker})
	const frames = 50
	st := newStreamer(t, "tl2", frames)
	args := st.playArgs("rxn", 0x5ca1ab1f)
	args.T0Ms, args.TS0 = time.Now().UnixMilli(), st.ts0
	id := rec.send(t, "rxn", protocol.OpPlay, args, time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rxn", id); a.State != protocol.AckDone {
		t.Fatalf("play ack %+v", a)
	}
	st.waitReceivers(t, 1)
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	st.bye()
	stats := waitDone(t, r, "tl2")
	if stats.Played != frames || stats.EndReason != EndBye || !stats.FirstSampleAt.IsZero() {
		t.Errorf("stats %+v: want every frame played by the sender reports", stats)
	}
	if rep := r.SyncReport(); rep.Source != protocol.SyncNone {
		t.Errorf("sync report %+v without any answer", rep)
	}
}
