package daemon

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

// TestSystemUploadFormats uploads the formats phones and studios produce,
// which ffmpeg decodes (M4A/AAC, FLAC, Ogg Vorbis, generated here by
// ffmpeg), each a tone of its own, and plays them as one playlist: a
// receiver hears each tone in turn. Garbage is refused with a 4xx and
// stores nothing.
func TestSystemUploadFormats(t *testing.T) {
	ffmpeg := loatest.Tool(t, "ffmpeg")
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	files := []struct {
		name    string
		freq    float64
		args    []string
		source  string
		decoder string
	}{
		{"ban-tin.m4a", 500, []string{"-c:a", "aac", "-b:a", "64k"}, "mp4", "ffmpeg:aac"},
		{"nhac.flac", 1000, nil, "flac", "ffmpeg:flac"},
		{"thong-bao.ogg", 1500, []string{"-c:a", "libvorbis"}, "ogg", "ffmpeg:vorbis"},
	}
	var items []map[string]string
	for _, f := range files {
		var wav bytes.Buffer
		if err := media.EncodeWAV(&wav, media.Tone(f.freq, 44100, time.Second, 0.5), 44100, 1); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), f.name)
		cmd := exec.Command(ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-i", "pipe:0"}, f.args...), "-y", out)...)
		cmd.Stdin = &wav
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v\n%s", f.name, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.api.UploadMedia(ctx, f.name, data)
		if err != nil {
			t.Fatalf("upload %s: %v", f.name, err)
		}
		if m.Source != f.source || m.Decoder != f.decoder {
			t.Errorf("%s: source %q, decoder %q; want %q, %q", f.name, m.Source, m.Decoder, f.source, f.decoder)
		}
		if m.Duration < 990*time.Millisecond || m.Duration > 1050*time.Millisecond {
			t.Errorf("%s: %v long, want 1 s", f.name, m.Duration)
		}
		items = append(items, map[string]string{"media_id": m.ID, "gap": "500ms"})
	}
	list := func() []loa.Media {
		var l []loa.Media
		if err := s.api.JSON(ctx, "GET", "/api/v1/media", nil, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	before := list()
	for name, data := range map[string][]byte{
		"garbage.bin":  bytes.Repeat([]byte{0x13, 0x57, 0x9b, 0xdf, 0x02}, 2000),
		"damaged.flac": append([]byte("fLaC"), bytes.Repeat([]byte{0x5a, 0xa5}, 3000)...),
	} {
		_, err := s.api.UploadMedia(ctx, name, data)
		var ce *api.ClientError
		if !errors.As(err, &ce) || ce.Status < 400 || ce.Status >= 500 {
			t.Errorf("%s: got %v, want a 4xx error", name, err)
		} else {
			t.Logf("%s: %d %s", name, ce.Status, ce.Message)
		}
	}
	if after := list(); len(after) != len(before) {
		t.Errorf("refused uploads stored something: %d items, then %d", len(before), len(after))
	}

	var p loa.Playlist
	if err := s.api.JSON(ctx, "POST", "/api/v1/playlists", map[string]any{"id": "formats", "name": "Định dạng", "items": items}, &p); err != nil {
		t.Fatalf("create playlist: %v", err)
	}
	var sess loa.Session
	if err := s.api.JSON(ctx, "POST", "/api/v1/sessions", map[string]any{"playlist_id": "formats",
		"targets": map[string][]string{"areas": {"a"}}}, &sess); err != nil {
		t.Fatalf("start playlist session: %v", err)
	}
	s.finish(&sess, 5*time.Second, "a")
	r := s.byArea["a"][0]
	pcm := r.PCM(sess.ID)
	// The loud stretches, in 20 ms windows, one per item.
	var runs [][2]int
	start := -1
	for i := 0; i*960+960 <= len(pcm); i++ {
		var sum float64
		for _, v := range pcm[i*960 : i*960+960] {
			sum += float64(v) * float64(v)
		}
		loud := math.Sqrt(sum/960) > 1000
		switch {
		case loud && start < 0:
			start = i
		case !loud && start >= 0:
			runs = append(runs, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		runs = append(runs, [2]int{start, len(pcm) / 960})
	}
	if len(runs) != len(files) {
		t.Fatalf("receiver heard %d tones, want %d: %v", len(runs), len(files), runs)
	}
	for i, f := range files {
		a, b := runs[i][0]+5, runs[i][1]-5
		if b-a < 30 {
			t.Errorf("%s: played %d frames, want about 50", f.name, runs[i][1]-runs[i][0])
			continue
		}
		if got := dominantFrequency(pcm[a*960 : b*960]); math.Abs(got-f.freq) > 20 {
			t.Errorf("%s played at %.0f Hz, want %s", f.name, got, strconv.FormatFloat(f.freq, 'f', 0, 64))
		}
	}
}
