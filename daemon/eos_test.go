package daemon

import (
	"testing"
	"time"

	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

// endOfStream plays 3 s to every receiver under imp and checks that each
// ended by one of reasons, on the programme's last frame: no stream
// timeout, no concealment tail, and the PCM is exactly what it played.
func endOfStream(t *testing.T, receivers int, imp firmwaresim.Impairment, reasons ...string) {
	s := startSystem(t, systemOpts{receivers: receivers, impair: imp})
	med := s.upload(testSignal(3*time.Second), 48000)
	sess := s.play(med.ID, "a", "b")
	s.finish(sess, med.Duration, "a", "b")
	byReason := map[string]int{}
	for _, r := range s.fleet.Receivers() {
		st, _ := r.Session(sess.ID)
		byReason[st.EndReason]++
		ok := false
		for _, want := range reasons {
			ok = ok || st.EndReason == want
		}
		if !ok {
			t.Errorf("%s ended by %q, want one of %v: %+v", r.ID(), st.EndReason, reasons, st)
		}
		// Expected counts from the first packet received: one lost at the
		// very start is not counted, one lost at the end is. Slots passed
		// over to keep to the timeline on a loaded host (Skipped, the
		// receiver's own count) are the host's, as in the other system tests.
		if played := st.Played + min(st.Skipped, maxSkipped); st.Played > uint64(st.Expected) || played < uint64(st.Expected) ||
			st.Expected > med.Frames || st.Expected < med.Frames-2 || st.Silence != 0 {
			t.Errorf("%s played %d slots (%d silent, %d skipped) of %d expected, the programme has %d frames", r.ID(),
				st.Played, st.Silence, st.Skipped, st.Expected, med.Frames)
		}
		if n := len(r.PCM(sess.ID)); uint64(n) != st.Played*protocol.FrameSamples {
			t.Errorf("%s kept %d samples for %d slots played", r.ID(), n, st.Played)
		}
	}
	t.Logf("%d receivers, loss %.0f%%, BYE loss %.0f%%: ended %v", receivers, 100*imp.Loss, 100*imp.ByeLoss, byReason)
}

// Every BYE lost: receivers stop at play.end_frame, not by timeout.
func TestSystemByeLostEndsAtEndFrame(t *testing.T) {
	endOfStream(t, 6, firmwaresim.Impairment{Loss: 0.05, ByeLoss: 1}, firmwaresim.EndEndFrame)
}

// 8 % loss on the stream and on its BYEs: the repeated BYE (or end_frame)
// ends every receiver, none by timeout.
func TestSystemLossyLinkEndsByBye(t *testing.T) {
	endOfStream(t, 10, firmwaresim.Impairment{Loss: 0.08, ByeLoss: 0.08}, firmwaresim.EndBye, firmwaresim.EndEndFrame)
}
