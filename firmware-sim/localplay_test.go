package firmwaresim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func playStored(f *cacheFixture, t *testing.T, dev string, a protocol.PlayStoredArgs) protocol.Ack {
	t.Helper()
	id := f.rec.send(t, dev, protocol.OpPlayStored, a, time.Now().Add(time.Minute))
	return f.rec.finalAck(t, dev, id)
}

// A manifest is applied, reported in its ack and in telemetry, and a
// play_stored plays the cached item through the stream path: the
// decoded tone, repeated, at the override volume, with played and
// finished events under the session; the receiver's volume comes back.
func TestCacheAndPlayStored(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	r := f.receiver(t, Config{ID: "rx1", Decode: true, KeepPCM: true})
	if st := r.status(true); !st.Has(protocol.CapCache) || st.CacheBudget != DefaultCacheBudget {
		t.Fatalf("status %+v: want cache announced with its budget", st)
	}
	const n = 25
	tone := oggOpus(toneFrames(t, n))
	other := oggOpus(sineFrames(t, 10, 440))
	a := f.apply(t, "rx1", 1, f.item(12, tone), f.item(7, other))
	h := holdingOf(t, a)
	if a.State != protocol.AckDone || h.Version != 1 || strings.Join(h.Held, ",") != "stored:12,stored:7" || h.Missing != 0 ||
		h.Bytes != int64(len(tone)+len(other)) || h.Budget != DefaultCacheBudget {
		t.Fatalf("ack %+v, holding %+v", a, h)
	}
	if tl := r.Telemetry(); tl.Cache == nil || tl.Cache.Version != 1 || len(tl.Cache.Held) != 2 {
		t.Errorf("tele.cache %+v", tl.Cache)
	}
	// The same manifest again is done at once.
	if a := f.apply(t, "rx1", 1, f.item(12, tone), f.item(7, other)); a.State != protocol.AckDone || a.Msg != "already held" {
		t.Errorf("same manifest again: %+v", a)
	}

	sum := sha256.Sum256(tone)
	until := time.Now().Add(time.Minute).UnixMilli()
	a = playStored(f, t, "rx1", protocol.PlayStoredArgs{Session: "alert1", Code: 12, SHA256: hex.EncodeToString(sum[:]),
		Priority: 240, Repeats: 2, Volume: 95, UntilMs: until})
	if a.State != protocol.AckDone {
		t.Fatalf("play_stored acked %+v", a)
	}
	f.rec.event(t, "rx1", protocol.EventPlayed, "alert1")
	fin := f.rec.event(t, "rx1", protocol.EventFinished, "alert1")
	if fin.Stream == nil || fin.Stream.Played != 2*n || fin.Stream.Decoded != 2*n || fin.Stream.Lost != 0 || fin.Stream.Received != 2*n {
		t.Errorf("finished %+v", fin.Stream)
	}
	st, _ := r.Session("alert1")
	if st.EndReason != EndPlayedOut || st.Local != "stored:12" {
		t.Errorf("session %+v", st)
	}
	pcm := r.PCM("alert1")
	if len(pcm) != 2*n*protocol.FrameSamples {
		t.Fatalf("%d samples played, want %d", len(pcm), 2*n*protocol.FrameSamples)
	}
	tail := pcm[len(pcm)-protocol.FrameSamples*10:]
	if g1, g2 := goertzel(tail, 1000), goertzel(tail, 440); g1 < 100*g2 {
		t.Errorf("the second repeat does not hold the 1 kHz tone: %g vs %g at 440 Hz", g1, g2)
	}
	loatest.Eventually(t, waitLimit, func() bool { return r.Volume() == DefaultVolume }, "volume restored after the override")
}

// play_stored refuses an item not held, held at another version, or
// expired, and plays nothing.
func TestPlayStoredRefusals(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	r := f.receiver(t, Config{ID: "rx1"})
	B, C := f.item(2, oggOpus(toneFrames(t, 5))), f.item(3, oggOpus(sineFrames(t, 5, 700)))
	A := f.item(1, oggOpus(sineFrames(t, 5, 300)))
	if h := holdingOf(t, f.apply(t, "rx1", 1, B)); len(h.Held) != 1 {
		t.Fatalf("holding %+v", h)
	}
	for name, c := range map[string]struct {
		args protocol.PlayStoredArgs
		code string
	}{
		"evicted":       {protocol.PlayStoredArgs{Session: "s1", Code: 1, SHA256: A.SHA256, Priority: 240}, protocol.StoredNotCached},
		"other version": {protocol.PlayStoredArgs{Session: "s2", Code: 2, SHA256: C.SHA256, Priority: 240}, protocol.StoredNotCached},
		"expired":       {protocol.PlayStoredArgs{Session: "s3", Code: 2, SHA256: B.SHA256, Priority: 240, UntilMs: time.Now().Add(-time.Second).UnixMilli()}, protocol.StoredExpired},
		"invalid":       {protocol.PlayStoredArgs{Session: "s4", Code: 0, SHA256: B.SHA256}, CodeInvalid},
	} {
		if a := playStored(f, t, "rx1", c.args); a.State != protocol.AckFailed || a.Code != c.code {
			t.Errorf("%s: %+v, want failed %s", name, a, c.code)
		}
	}
	if len(r.Sessions()) != 0 {
		t.Errorf("refused plays played: %+v", r.Sessions())
	}
}

// A local play that is not forced does not preempt a higher priority;
// an emergency one preempts a lower one; a play of the same session
// later replaces the cached copy (the stream wins); the expiry stops a
// repeat in progress.
func TestLocalPlayArbitrationAndExpiry(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	r := f.receiver(t, Config{ID: "rx1"})
	item := f.item(9, oggOpus(toneFrames(t, 50)))
	if h := holdingOf(t, f.apply(t, "rx1", 1, item)); len(h.Held) != 1 {
		t.Fatalf("holding %+v", h)
	}
	play := func(p LocalPlay) error {
		p.Kind, p.Key = protocol.CacheKindStored, "9"
		return r.PlayLocal(p)
	}
	if err := play(LocalPlay{Session: "hi", Priority: 250, Repeats: 20}); err != nil {
		t.Fatal(err)
	}
	var le *LocalPlayError
	if err := play(LocalPlay{Session: "lo", Priority: 100}); !errors.As(err, &le) || le.Code != protocol.StoredBusy {
		t.Errorf("lower priority over a higher one: %v", err)
	}
	if err := play(LocalPlay{Session: "hi", Priority: 250, Repeats: 20}); err != nil {
		t.Errorf("the same play again: %v", err)
	}
	if n := len(r.Sessions()); n != 1 {
		t.Errorf("%d sessions after the same play again, want 1", n)
	}
	until := time.Now().Add(300 * time.Millisecond)
	if err := play(LocalPlay{Session: "em", Priority: 255, Repeats: 20, Until: until}); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, waitLimit, func() bool { st, ok := r.Session("em"); return ok && st.Done }, "the expiring play ends")
	hi, _ := r.Session("hi")
	em, _ := r.Session("em")
	if hi.EndReason != EndPreempted || em.EndReason != EndExpired || em.Played >= 20*50 || em.Ended.Before(until) {
		t.Errorf("hi %s, em %s after %d frames at %v (until %v)", hi.EndReason, em.EndReason, em.Played, em.Ended, until)
	}
	f.rec.event(t, "rx1", protocol.EventFinished, "em")
}

func TestOggOpusFrames(t *testing.T) {
	frames := toneFrames(t, 3)
	got, err := oggOpusFrames(oggOpus(frames))
	if err != nil || len(got) != 3 || string(got[2]) != string(frames[2]) {
		t.Fatalf("frames %d, %v", len(got), err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not ogg":   []byte("RIFF...."),
		"truncated": oggOpus(frames)[:40],
		"no audio":  oggOpus(nil),
	} {
		if _, err := oggOpusFrames(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzOggOpusFrames(f *testing.F) {
	f.Add(oggOpus(toneFrames(f, 2)))
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := oggOpusFrames(b)
		if err == nil && len(frames) == 0 {
			t.Fatal("no frames accepted")
		}
	})
}
