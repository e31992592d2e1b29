package firmwaresim

import (
	"context"
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
