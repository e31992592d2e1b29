package firmwaresim

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// programmeItem serves file as the programme of occurrence m and returns
// its signed entry.
func (f *cacheFixture) programmeItem(m protocol.ProgrammeMeta, file []byte) protocol.CacheItem {
	sum := sha256.Sum256(file)
	h := hex.EncodeToString(sum[:])
	it := protocol.CacheItem{Kind: protocol.CacheKindProgramme, Key: m.Session, SHA256: h, Size: int64(len(file)),
		URL: f.srv.put("/cache/"+h, file), Meta: m.Encode()}
	it.Sig = protocol.SignCacheItem(f.priv, it)
	return it
}

// No stream comes for a cached programme: CacheGrace after its start the
// receiver plays its copy from the frame of the wall clock to the end, on
// the occurrence's timeline, and reports from_cache with the frames; a
// programme whose end has passed, or one not yet due, is not played.
func TestProgrammeAiredFromCache(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	r := f.receiver(t, Config{ID: "rx1", Decode: true})
	const frames = 200 // 4 s
	start := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	m := protocol.ProgrammeMeta{Session: "p-1", Occurrence: "sang@x", StartMs: start.UnixMilli(), TS0: 7, Frames: frames, Priority: 64}
	past := protocol.ProgrammeMeta{Session: "p-0", Occurrence: "old@x", StartMs: start.Add(-time.Minute).UnixMilli(), TS0: 1, Frames: frames, Priority: 64}
	later := protocol.ProgrammeMeta{Session: "p-2", Occurrence: "later@x", StartMs: start.Add(time.Hour).UnixMilli(), TS0: 1, Frames: frames, Priority: 64}
	file := oggOpus(toneFrames(t, frames))
	if h := holdingOf(t, f.apply(t, "rx1", 1, f.programmeItem(m, file), f.programmeItem(past, file), f.programmeItem(later, file))); len(h.Held) != 3 {
		t.Fatalf("holding %+v", h)
	}
	ev := f.rec.event(t, "rx1", protocol.EventFromCache, "p-1")
	got := r.AiredFromCache()
	if len(got) != 1 {
		t.Fatalf("aired from cache %+v, want the one due", got)
	}
	a := got[0]
	grace := int(protocol.CacheGrace / protocol.FrameDuration)
	if a.From < grace || a.From > grace+2*int(programmeCheck/protocol.FrameDuration) || a.Occurrence != "sang@x" {
		t.Errorf("from frame %d, want the frame of start + grace (%d) or just after", a.From, grace)
	}
	if want := start.Add(time.Duration(a.From)*protocol.FrameDuration + protocol.DefaultDelay); !a.At.Equal(want) {
		t.Errorf("frame %d due at %v, want %v: on the occurrence's timeline", a.From, a.At, want)
	}
	if a.Stats.Played != uint64(frames-a.From) || a.Stats.EndReason != EndPlayedOut || a.Stats.Local != "programme:p-1" {
		t.Errorf("copy %+v, want frames %d.. played to the end", a.Stats, a.From)
	}
	if ev.Msg != "sang@x" || ev.Stream == nil || ev.Stream.Played != a.Stats.Played {
		t.Errorf("from_cache %+v", ev)
	}
	if !a.Stats.FirstPlayed.IsZero() && a.Stats.FirstPlayed.Before(a.At.Add(-protocol.FrameDuration)) {
		t.Errorf("first frame played at %v, before it was due at %v", a.Stats.FirstPlayed, a.At)
	}
}
