package daemon

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
)

// TestSystemPlaylist plays two media items with a half-second gap as one
// session: every receiver hears tone A, the gap, then tone B.
func TestSystemPlaylist(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	ctx := context.Background()
	a := s.upload(media.Tone(500, 48000, time.Second, 0.5), 48000)
	b := s.upload(media.Tone(1500, 48000, time.Second, 0.5), 48000)
	var p loa.Playlist
	err := s.api.JSON(ctx, "POST", "/api/v1/playlists", map[string]any{"id": "sang", "name": "Chương trình sáng",
		"items": []map[string]string{{"media_id": a.ID, "gap": "500ms"}, {"media_id": b.ID}}}, &p)
	if err != nil {
		t.Fatalf("create playlist: %v", err)
	}
	for name, body := range map[string]any{
		"missing media": map[string]any{"id": "x", "name": "x", "items": []map[string]string{{"media_id": "nope"}}},
		"bad gap":       map[string]any{"id": "y", "name": "y", "items": []map[string]string{{"media_id": a.ID, "gap": "soon"}}},
		"no items":      map[string]any{"id": "z", "name": "z", "items": []map[string]string{}},
	} {
		if err := s.api.JSON(ctx, "POST", "/api/v1/playlists", body, nil); err == nil {
			t.Errorf("%s: playlist accepted", name)
		}
	}

	var sess loa.Session
	if err := s.api.JSON(ctx, "POST", "/api/v1/sessions", map[string]any{"playlist_id": "sang",
		"targets": map[string][]string{"areas": {"a"}}}, &sess); err != nil {
		t.Fatalf("start playlist session: %v", err)
	}
	wantFrames := a.Frames + 25 + b.Frames
	s.finish(&sess, 3*time.Second, "a")
	for _, r := range s.byArea["a"] {
		st, _ := r.Session(sess.ID)
		if st.Decoded < uint64(wantFrames)-2 || st.Played > uint64(wantFrames)+2 {
			t.Errorf("%s played %d, decoded %d frames, want %d", r.ID(), st.Played, st.Decoded, wantFrames)
		}
		pcm := r.PCM(sess.ID)
		// 20 ms windows: loud, then the gap, then loud again.
		var loud []bool
		for i := 0; i+960 <= len(pcm); i += 960 {
			var sum float64
			for _, v := range pcm[i : i+960] {
				sum += float64(v) * float64(v)
			}
			loud = append(loud, math.Sqrt(sum/960) > 1000)
		}
		first, gapStart, gapEnd := -1, -1, -1
		for i, l := range loud {
			switch {
			case l && first < 0:
				first = i
			case !l && first >= 0 && gapStart < 0:
				gapStart = i
			case l && gapStart >= 0 && gapEnd < 0:
				gapEnd = i
			}
		}
		if first < 0 || gapStart < 0 || gapEnd < 0 {
			t.Errorf("%s: no tone–gap–tone shape in %d windows", r.ID(), len(loud))
			continue
		}
		if gap := time.Duration(gapEnd-gapStart) * 20 * time.Millisecond; gap < 480*time.Millisecond || gap > 580*time.Millisecond {
			t.Errorf("%s: gap of %v between the items, want 500 ms (+ the join's few ms)", r.ID(), gap)
		}
		if f := dominantFrequency(pcm[(first+10)*960 : (first+20)*960]); math.Abs(f-500) > 20 {
			t.Errorf("%s: first item at %.0f Hz, want 500", r.ID(), f)
		}
		if f := dominantFrequency(pcm[(gapEnd+10)*960 : (gapEnd+20)*960]); math.Abs(f-1500) > 20 {
			t.Errorf("%s: second item at %.0f Hz, want 1500", r.ID(), f)
		}
	}
}
