package firmwaresim

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// A new leader takes a session over at a higher fence while the deposed
// leader, which has not noticed, keeps streaming it (same SSRC, same
// sequence numbers, even from the new leader's address) and sends its
// play again and a play of a new session: the receiver plays only the new
// leader's stream, counts every deposed packet as failing authentication,
// and refuses both plays with code fence.
func TestDeposedLeaderCannotPlay(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, KeepPCM: true})
	const frames = 50
	old := newStreamer(t, "s1", frames) // fence {3 1}
	playSession(t, rec, old, "rx1", 7)
	later := time.Now().Add(time.Minute)

	leader := newStreamer(t, "s1", frames)
	leader.fence = protocol.Fence{Gen: 3, Term: 2}
	playSession(t, rec, leader, "rx1", 7)
	if f := r.Fence(); f != leader.fence {
		t.Fatalf("receiver's fence %+v, want the new leader's %+v", f, leader.fence)
	}

	// The deposed leader's commands.
	for _, args := range []protocol.PlayArgs{old.playArgs("rx1", 7), newStreamer(t, "s9", frames).playArgs("rx1", 9)} {
		id := rec.send(t, "rx1", protocol.OpPlay, args, later)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeFence {
			t.Errorf("deposed leader's play of %s acked %+v, want failed %s", args.Session, a, CodeFence)
		}
	}

	// The deposed leader's packets: a 3 kHz tone under its keys, each
	// sent just ahead of the genuine packet of the same sequence number.
	to := leader.addr("rx1")
	tone := sineFrames(t, frames, 3000)
	forged := 0
	leader.senderReport()
	leader.streamHook(context.Background(), seq(frames), func(n int) {
		leader.sendRaw(to, old.sealFor("rx1", old.packetOf(n, tone[n])))
		forged++
	})
	leader.bye()

	checkPlayedGenuine(t, waitDone(t, r, "s1"), frames, uint64(forged))
	pcm := r.PCM("s1")
	if goertzel(pcm, 1000) < 100*goertzel(pcm, 3000) {
		t.Error("the deposed leader's tone was heard")
	}
	if ss := r.Sessions(); len(ss) != 2 || ss[0].EndReason != EndPreempted {
		t.Errorf("sessions %+v: want the deposed leader's s1 preempted by the new leader's", ss)
	}
}

// sendFenced publishes a command whose envelope carries fence f.
func (rec *recorder) sendFenced(t *testing.T, dev, op string, args any, f protocol.Fence) string {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmdSeq.Lock()
	cmdSeq.n++
	id := fmt.Sprintf("f%d", cmdSeq.n)
	cmdSeq.Unlock()
	b, err := json.Marshal(protocol.Command{ID: id, Op: op, Exp: time.Now().Add(time.Minute).UnixMilli(), Args: raw, Fence: &f})
	if err != nil {
		t.Fatal(err)
	}
	rec.sendRaw(t, dev, b)
	return id
}

// Any command whose envelope fence is lower than the receiver's is
// refused with code fence and runs nothing; a higher one runs and raises
// the receiver's fence, so the plays of the one it deposed are refused.
func TestDeposedLeaderCommandsRefused(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	st := newStreamer(t, "s1", 500)
	st.fence = protocol.Fence{Gen: 3, Term: 2}
	playSession(t, rec, st, "rx1", 7)
	deposed := protocol.Fence{Gen: 3, Term: 1}

	for op, args := range map[string]any{protocol.OpStop: protocol.StopArgs{Session: "s1"}, protocol.OpVolume: protocol.VolumeArgs{Level: 5},
		protocol.OpMute: protocol.MuteArgs{Muted: true}} {
		id := rec.sendFenced(t, "rx1", op, args, deposed)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeFence {
			t.Errorf("deposed leader's %s acked %+v, want failed %s", op, a, CodeFence)
		}
	}
	if ss := r.Sessions(); len(ss) != 1 || ss[0].Done || r.Volume() != DefaultVolume || r.Muted() {
		t.Fatalf("after refused commands: sessions %+v, volume %d, muted %v", ss, r.Volume(), r.Muted())
	}

	// A newer leader's command raises the fence: the one before it is
	// deposed too.
	newer := protocol.Fence{Gen: 3, Term: 5}
	if a := rec.finalAck(t, "rx1", rec.sendFenced(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 40}, newer)); a.State != protocol.AckDone || r.Volume() != 40 {
		t.Fatalf("newer leader's volume acked %+v, volume %d", a, r.Volume())
	}
	if r.Fence() != newer {
		t.Errorf("receiver's fence %+v, want %+v", r.Fence(), newer)
	}
	other := newStreamer(t, "s2", 10)
	other.fence = st.fence
	if a := rec.finalAck(t, "rx1", rec.send(t, "rx1", protocol.OpPlay, other.playArgs("rx1", 8), time.Now().Add(time.Minute))); a.State != protocol.AckFailed || a.Code != CodeFence {
		t.Errorf("play at the deposed fence acked %+v, want failed %s", a, CodeFence)
	}
	if a := rec.finalAck(t, "rx1", rec.sendFenced(t, "rx1", protocol.OpStop, protocol.StopArgs{Session: "s1"}, newer)); a.State != protocol.AckDone {
		t.Errorf("newer leader's stop acked %+v", a)
	}
	if st, _ := r.Session("s1"); !st.Done || st.EndReason != EndStop {
		t.Errorf("s1 after the newer leader's stop: %+v", st)
	}
}
