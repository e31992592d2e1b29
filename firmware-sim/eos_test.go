package firmwaresim

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// playEnd plays st on dev as playSession does, with play.end_frame.
func playEnd(t *testing.T, rec *recorder, st *streamer, dev string, recvSSRC uint32, endFrame int) {
	t.Helper()
	args := st.playArgs(dev, recvSSRC)
	args.EndFrame = endFrame
	id := rec.send(t, dev, protocol.OpPlay, args, time.Now().Add(time.Minute))
	rec.ack(t, dev, id, protocol.AckAccepted)
	if a := rec.finalAck(t, dev, id); a.State != protocol.AckDone {
		t.Fatalf("play ack %+v, want done", a)
	}
	st.waitReceivers(t, 1)
}

// byeAt sends the controller's BYE after n packets: its Sender Report is
// at frame n, the one after the last sent, with packet count n.
func (s *streamer) byeAt(n int) {
	sr := s.sr(time.Now(), s.ts0+uint32(n*protocol.FrameSamples))
	sr.PacketCount = uint32(n)
	b, err := rtcp.Marshal([]rtcp.Packet{sr, &rtcp.Goodbye{Sources: []uint32{s.ssrc}}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.sendAll(b)
}

// checkOutput checks that the PCM kept and the WAV written are exactly
// the slots played, and returns the PCM.
func checkOutput(t *testing.T, r *Receiver, dir, session string, st SessionStats) []int16 {
	t.Helper()
	pcm := r.PCM(session)
	if uint64(len(pcm)) != st.Played*protocol.FrameSamples {
		t.Errorf("pcm of %d samples for %d slots played", len(pcm), st.Played)
	}
	wav, err := os.ReadFile(filepath.Join(dir, r.ID()+"-"+session+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	if len(wav) != wavHeaderLen+2*len(pcm) {
		t.Errorf("wav of %d bytes, want %d: the speaker's output", len(wav), wavHeaderLen+2*len(pcm))
	}
	return pcm
}

// Every BYE lost: the receiver stops at play.end_frame, on the programme's
// last frame, with no concealment tail.
func TestEndFrameEndsWithoutBye(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir,
		Impair: Impairment{ByeLoss: 1}})
	const frames = 50
	st := newStreamer(t, "s1", frames)
	playEnd(t, rec, st, "rx1", 1, frames-1)
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	for range protocol.ByeRepeats {
		st.byeAt(frames)
	}

	stats := waitDone(t, r, "s1")
	if stats.EndReason != EndEndFrame {
		t.Errorf("end reason %q, want %q", stats.EndReason, EndEndFrame)
	}
	if stats.Played != frames || stats.Expected != frames || stats.Received != frames ||
		stats.Concealed+stats.Silence+stats.Lost != 0 {
		t.Errorf("stats %+v, want %d frames played from their packets, nothing concealed", stats, frames)
	}
	checkOutput(t, r, dir, "s1", stats)
	fin := rec.event(t, "rx1", protocol.EventFinished, "s1")
	if fin.Stream == nil || *fin.Stream != stats.StreamStats() {
		t.Errorf("finished event %+v, want %+v", fin.Stream, stats.StreamStats())
	}
}

// The last packets and every BYE lost: the frames up to end_frame are
// played concealed and counted as lost.
func TestEndFrameCountsLossAtTheEnd(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir})
	const frames, sent = 60, 52
	st := newStreamer(t, "s1", frames)
	playEnd(t, rec, st, "rx1", 1, frames-1)
	st.senderReport()
	st.stream(context.Background(), seq(sent))

	stats := waitDone(t, r, "s1")
	if stats.EndReason != EndEndFrame || stats.Expected != frames || stats.Received != sent ||
		stats.Lost != frames-sent || stats.Played != frames || stats.Concealed != frames-sent || stats.Silence != 0 {
		t.Errorf("stats %+v, want end_frame after %d frames, the last %d lost and concealed", stats, frames, frames-sent)
	}
	checkOutput(t, r, dir, "s1", stats)
}

// A session stopped before its end_frame ends at its BYE, whose Sender
// Report says where the stream stopped: the packets lost before it count.
func TestByeBeforeEndFrame(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir})
	const frames, stopped, received = 100, 40, 37
	st := newStreamer(t, "s1", frames)
	playEnd(t, rec, st, "rx1", 1, frames-1)
	st.senderReport()
	st.stream(context.Background(), seq(received))
	st.byeAt(stopped)

	stats := waitDone(t, r, "s1")
	if stats.EndReason != EndBye || stats.Expected != stopped || stats.Played != stopped ||
		stats.Lost != stopped-received || stats.Silence != 0 {
		t.Errorf("stats %+v, want bye after %d frames, %d lost", stats, stopped, stopped-received)
	}
	checkOutput(t, r, dir, "s1", stats)
}

// A gap in the stream is concealed for at most MaxConcealFrames, then
// played as silence; the stream resumes after it.
func TestLongGapConcealedThenSilent(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir})
	const frames, gapFrom, gapTo = 60, 20, 45 // frames 20..44 never sent
	st := newStreamer(t, "s1", frames)
	playEnd(t, rec, st, "rx1", 1, frames-1)
	st.senderReport()
	order := append(seq(gapFrom), seq(frames)[gapTo:]...)
	st.stream(context.Background(), order)
	st.byeAt(frames)

	stats := waitDone(t, r, "s1")
	const gap = gapTo - gapFrom
	// The gap's last frame comes back from the next packet's FEC.
	silence := uint64(gap - 1 - protocol.MaxConcealFrames)
	if stats.EndReason != EndBye || stats.Played != frames || stats.Lost != gap ||
		stats.Concealed != protocol.MaxConcealFrames || stats.Silence != silence || stats.FECRecovered != 1 {
		t.Errorf("stats %+v, want %d concealed, %d silent, 1 FEC of a %d-frame gap", stats,
			protocol.MaxConcealFrames, silence, gap)
	}
	pcm := checkOutput(t, r, dir, "s1", stats)
	if len(pcm) == frames*protocol.FrameSamples {
		from := (gapFrom + protocol.MaxConcealFrames) * protocol.FrameSamples
		to := from + int(silence)*protocol.FrameSamples
		for i, v := range pcm[from:to] {
			if v != 0 {
				t.Fatalf("sample %d of the silence is %d", from+i, v)
			}
		}
		if goertzel(pcm[to+2*protocol.FrameSamples:], 1000) == 0 {
			t.Error("no tone after the gap")
		}
	}
}

// A stream that stops without a BYE and without end_frame (a live
// programme whose controller crashed) ends after StreamTimeout: the
// receiver concealed MaxConcealFrames, then played silence, all counted
// and in the WAV.
func TestStreamCrashConcealsThenSilence(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true, WAVDir: dir})
	const frames = 30
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)
	st.stream(context.Background(), seq(frames))

	stats := waitDone(t, r, "s1")
	if stats.EndReason != EndTimeout || stats.Expected != frames || stats.Received != frames ||
		stats.Concealed != protocol.MaxConcealFrames || stats.Silence == 0 ||
		stats.Played != frames+stats.Concealed+stats.Silence {
		t.Errorf("stats %+v, want timeout after %d frames, %d concealed, then silence", stats, frames, protocol.MaxConcealFrames)
	}
	pcm := checkOutput(t, r, dir, "s1", stats)
	if from := (frames + protocol.MaxConcealFrames) * protocol.FrameSamples; len(pcm) > from {
		for i, v := range pcm[from:] {
			if v != 0 {
				t.Fatalf("sample %d of the silence is %d", from+i, v)
			}
		}
	}
	fin := rec.event(t, "rx1", protocol.EventFinished, "s1")
	if fin.Stream == nil || *fin.Stream != stats.StreamStats() || fin.Stream.Silence == 0 {
		t.Errorf("finished event %+v, want %+v", fin.Stream, stats.StreamStats())
	}
}
