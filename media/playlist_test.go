package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// testItem is a generated recording: a tone of secs seconds at freq Hz,
// stored as Transcode stores it.
type testItem struct {
	secs, freq float64
	gap        time.Duration
	info       Info
	file       []byte
}

func (it *testItem) samples() int { return int(it.secs * 48000) }

func makeItems(t testing.TB, items ...testItem) []testItem {
	t.Helper()
	for i := range items {
		items[i].info, items[i].file = transcodeTone(t, items[i].secs, items[i].freq)
		if got := int(math.Round(items[i].info.Duration.Seconds() * 48000)); got != items[i].samples() {
			t.Fatalf("item %d: Transcode kept %d samples of %d", i, got, items[i].samples())
		}
	}
	return items
}

// files counts the items a playlist opens and closes.
type files struct {
	t      testing.TB
	open   int // open now
	maxOpn int
	opened []int
}

type trackedFile struct {
	io.Reader
	f      *files
	closed bool
}

func (r *trackedFile) Close() error {
	if r.closed {
		r.f.t.Error("an item was closed twice")
	}
	r.closed = true
	r.f.open--
	return nil
}

func (f *files) item(i int, file []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f.open++
		f.maxOpn = max(f.maxOpn, f.open)
		f.opened = append(f.opened, i)
		return &trackedFile{Reader: bytes.NewReader(file), f: f}, nil
	}
}

func playlistOf(t testing.TB, items []testItem) (*Playlist, *files) {
	t.Helper()
	f := &files{t: t}
	var pl []PlaylistItem
	for i, it := range items {
		pl = append(pl, PlaylistItem{Open: f.item(i, it.file), Gap: it.gap})
	}
	p, err := NewPlaylist(pl)
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

// drain reads a playlist to the end and returns its packets and, for each,
// the item Item reported after it was returned.
func drain(t testing.TB, p *Playlist) (packets [][]byte, items []int) {
	t.Helper()
	for {
		pkt, err := p.Next()
		if err == io.EOF {
			return packets, items
		}
		if err != nil {
			t.Fatalf("Next after %d packets: %v", len(packets), err)
		}
		packets = append(packets, pkt)
		items = append(items, p.Item())
	}
}

// standardItems: no gap after the first, half a second after the second,
// and a gap that is not a whole number of frames (rounded to 5) after the
// last. Their lengths leave different padding in their last packets.
func standardItems(t testing.TB) []testItem {
	return makeItems(t,
		testItem{secs: 1.0, freq: 440, gap: 0},
		testItem{secs: 0.73, freq: 1000, gap: 500 * time.Millisecond},
		testItem{secs: 0.5, freq: 2500, gap: 95 * time.Millisecond},
	)
}

func TestPlaylistSequence(t *testing.T) {
	items := standardItems(t)
	p, f := playlistOf(t, items)
	packets, itemOf := drain(t, p)
	if _, err := p.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	var frames []int
	var gaps []time.Duration
	for _, it := range items {
		frames = append(frames, it.info.Frames)
		gaps = append(gaps, it.gap)
	}
	gapFrames := []int{0, 25, 5}
	want := frames[0] + frames[1] + frames[2] + 30
	if got := PlaylistFrames(frames, gaps); got != want {
		t.Errorf("PlaylistFrames = %d, want %d", got, want)
	}
	if len(packets) != want {
		t.Fatalf("playlist sent %d packets, want %d", len(packets), want)
	}

	// Packet by packet: each item's stored packets, then its gap as silence.
	silence := mustSilence(t)
	at := 0
	for i, it := range items {
		stored, _, _ := readOgg(t, it.file)
		for j, pkt := range stored {
			if !bytes.Equal(packets[at], pkt) || itemOf[at] != i {
				t.Fatalf("packet %d (item %d, Item() %d): not item %d's packet %d", at, i, itemOf[at], i, j)
			}
			at++
		}
		for j := range gapFrames[i] {
			if !bytes.Equal(packets[at], silence) || itemOf[at] != i {
				t.Fatalf("packet %d (Item() %d): not silence %d of item %d's gap", at, itemOf[at], j, i)
			}
			at++
		}
	}

	if f.maxOpn != 1 || f.open != 0 || fmt.Sprint(f.opened) != "[0 1 2]" {
		t.Errorf("items opened %v, at most %d at once, %d left open; want [0 1 2], 1, 0", f.opened, f.maxOpn, f.open)
	}
}

// The decoded session has each tone in order, with only the silence asked
// for between them (plus the padding and pre-skip each join carries, see
// Playlist) and no dropout inside an item.
func TestPlaylistDecodedAudio(t *testing.T) {
	items := standardItems(t)
	p, _ := playlistOf(t, items)
	packets, _ := drain(t, p)
	pcm, err := DecodePackets(packets)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, len(pcm))
	for i, v := range pcm {
		x[i] = float64(v) / 32768
	}

	// Where each item's audio lies in the decoded stream: after its packet
	// offset and its file's pre-skip.
	const preSkip = 312
	type span struct{ from, to int }
	var want []span
	first := 0
	for _, it := range items {
		from := first*960 + preSkip
		want = append(want, span{from, from + it.samples()})
		first += it.info.Frames + gapFrames(it.gap)
	}

	// Loud runs of 1 ms blocks: above -30 dBFS is audio; the tones sit
	// near -16 dBFS, silence far below -60. A quiet spell under 5 ms is
	// the codec ringing where a tone stops, not a dropout: a lost or
	// misplaced packet silences 20 ms.
	const block, minQuiet = 48, 240
	var got []span
	loud := false
	for b := 0; b+block <= len(x); b += block {
		l := meanSquare(x[b:b+block]) > 1e-3
		switch {
		case l && !loud && len(got) > 0 && b-got[len(got)-1].to < minQuiet:
			// the quiet spell was too short: the run goes on
		case l && !loud:
			got = append(got, span{from: b})
		case !l && loud:
			got[len(got)-1].to = b
		}
		loud = l
	}
	if loud {
		t.Fatal("the session ends loud; want the last item's gap of silence")
	}
	if len(got) != len(items) {
		t.Fatalf("decoded %d runs of audio %v, want %d %v (a dropout splits one)", len(got), got, len(items), want)
	}
	const tol = 480 // 10 ms: the codec smears edges by a few ms; a frame too many or too few is 960
	for i := range items {
		if d := got[i].from - want[i].from; d < -tol || d > tol {
			t.Errorf("item %d starts at sample %d, want %d", i, got[i].from, want[i].from)
		}
		if d := got[i].to - want[i].to; d < -tol || d > tol {
			t.Errorf("item %d ends at sample %d, want %d", i, got[i].to, want[i].to)
		}
		if i > 0 {
			sil := got[i].from - got[i-1].to
			wantSil := want[i].from - want[i-1].to
			t.Logf("silence before item %d: %d samples (%.1f ms), want %d (gap %v + join %.1f ms)", i, sil, float64(sil)/48, wantSil, items[i-1].gap, float64(wantSil)/48-float64(gapFrames(items[i-1].gap))*20)
			if d := sil - wantSil; d < -tol || d > tol {
				t.Errorf("silence before item %d is %d samples, want %d", i, sil, wantSil)
			}
			if max := gapFrames(items[i-1].gap)*960 + 960 + preSkip + tol; sil > max {
				t.Errorf("silence before item %d is %d samples, more than gap + a frame + pre-skip", i, sil)
			}
		}
		mid := x[got[i].from+2400 : got[i].to-2400]
		own := power(mid, 48000, items[i].freq)
		for j, other := range items {
			if j != i && power(mid, 48000, other.freq) > 1e-3*own {
				t.Errorf("item %d (%v Hz) holds item %d's %v Hz", i, items[i].freq, j, other.freq)
			}
		}
	}
}

// Skip, as a restarted controller calls it, lands where Next would have
// been: at every position, inside items, at their boundaries and in gaps.
func TestPlaylistSkip(t *testing.T) {
	items := standardItems(t)
	ref, _ := playlistOf(t, items)
	all, itemOf := drain(t, ref)
	for k := 0; k <= len(all); k++ {
		p, f := playlistOf(t, items)
		if n, err := p.Skip(k); n != k || err != nil {
			t.Fatalf("Skip(%d) = %d, %v", k, n, err)
		}
		if k > 0 && k < len(all) && p.Item() != itemOf[k-1] {
			t.Fatalf("after Skip(%d): Item() = %d, want %d", k, p.Item(), itemOf[k-1])
		}
		rest, _ := drain(t, p)
		if len(rest) != len(all)-k {
			t.Fatalf("after Skip(%d): %d packets follow, want %d", k, len(rest), len(all)-k)
		}
		for j := range rest {
			if !bytes.Equal(rest[j], all[k+j]) {
				t.Fatalf("after Skip(%d): packet %d differs from a fresh playlist's packet %d", k, j, k+j)
			}
		}
		if f.open != 0 || f.maxOpn > 1 {
			t.Fatalf("after Skip(%d): %d items left open, up to %d at once", k, f.open, f.maxOpn)
		}
	}

	t.Run("in steps", func(t *testing.T) {
		// Across item 0's end, into item 1's gap, and past item 2's start.
		p, _ := playlistOf(t, items)
		at := 0
		for _, step := range []int{3, items[0].info.Frames - 5, 0, items[1].info.Frames + 10, 20} {
			if n, err := p.Skip(step); n != step || err != nil {
				t.Fatalf("Skip(%d) at %d = %d, %v", step, at, n, err)
			}
			at += step
			pkt, err := p.Next()
			if err != nil || !bytes.Equal(pkt, all[at]) {
				t.Fatalf("Next at %d after Skip(%d): %v, not packet %d", at, step, err, at)
			}
			at++
		}
	})

	t.Run("past the end", func(t *testing.T) {
		p, _ := playlistOf(t, items)
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
		n, err := p.Skip(len(all) + 100)
		if n != len(all)-1 || err != io.EOF {
			t.Fatalf("Skip past the end = %d, %v; want %d, io.EOF", n, err, len(all)-1)
		}
		if p.Item() != len(items)-1 {
			t.Errorf("Item() at the end = %d, want %d", p.Item(), len(items)-1)
		}
		if _, err := p.Next(); err != io.EOF {
			t.Errorf("Next after the end: %v, want io.EOF", err)
		}
	})

	t.Run("negative", func(t *testing.T) {
		p, _ := playlistOf(t, items)
		_, err := p.Skip(-1)
		wantCode(t, err, loa.EINVALID)
	})
}

// An item that cannot be played ends the playlist with an error that names
// it, after the items before it have played; later calls keep failing.
func TestPlaylistItemErrors(t *testing.T) {
	items := makeItems(t, testItem{secs: 0.2, freq: 440, gap: 40 * time.Millisecond}, testItem{secs: 0.2, freq: 880})
	good := items[0].file
	goodFrames := items[0].info.Frames + 2
	ps := pages(t, good)
	corrupt := bytes.Clone(good)
	corrupt[len(ps[0])+len(ps[1])+40] ^= 0x55 // the first audio page fails its CRC
	diskGone := errors.New("disk gone")

	for _, c := range []struct {
		name string
		open func() (io.ReadCloser, error)
		code string // of the error; "" when it wraps diskGone
	}{
		{"open fails", func() (io.ReadCloser, error) { return nil, diskGone }, ""},
		{"not Ogg", func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("ID3 not opus")), nil }, loa.EINVALID},
		{"corrupt page", func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(corrupt)), nil }, loa.EINVALID},
		{"truncated", func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(good[:len(good)-30])), nil }, loa.EINVALID},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &files{t: t}
			p, err := NewPlaylist([]PlaylistItem{
				{Open: f.item(0, good), Gap: items[0].gap},
				{Open: c.open},
				{Open: f.item(2, good)},
			})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for ; ; n++ {
				if _, err = p.Next(); err != nil {
					break
				}
			}
			check := func(err error) {
				t.Helper()
				if c.code == "" {
					if !errors.Is(err, diskGone) {
						t.Fatalf("got %v, want an error wrapping %v", err, diskGone)
					}
				} else {
					wantCode(t, err, c.code)
				}
				if !strings.Contains(loa.ErrorMessage(err)+err.Error(), "items[1]") {
					t.Errorf("error %q does not name items[1]", err)
				}
			}
			check(err)
			if n < goodFrames || p.Item() != 1 {
				t.Errorf("failed after %d packets at Item() %d; want item 0's %d packets first, then item 1", n, p.Item(), goodFrames)
			}
			if _, err := p.Next(); err == nil {
				t.Error("Next after a failure succeeded")
			} else {
				check(err)
			}
			if err := p.Close(); err != nil {
				t.Error(err)
			}
			if f.open != 0 || fmt.Sprint(f.opened) != "[0]" {
				t.Errorf("items opened %v, %d left open; want [0], 0", f.opened, f.open)
			}

			// A resume across the bad item fails the same way.
			p, err = NewPlaylist([]PlaylistItem{{Open: f.item(0, good), Gap: items[0].gap}, {Open: c.open}})
			if err != nil {
				t.Fatal(err)
			}
			n, err = p.Skip(1000)
			check(err)
			if n < goodFrames {
				t.Errorf("Skip failed after %d packets, want at least %d", n, goodFrames)
			}
		})
	}
}

func TestPlaylistClose(t *testing.T) {
	items := makeItems(t, testItem{secs: 0.5, freq: 440})
	p, f := playlistOf(t, items)
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if f.open != 1 {
		t.Fatalf("%d items open while playing, want 1", f.open)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if f.open != 0 {
		t.Errorf("%d items open after Close", f.open)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v, want an error", err)
	}
}

func TestNewPlaylistInvalid(t *testing.T) {
	open := func() (io.ReadCloser, error) { return nil, errors.New("unused") }
	for _, c := range []struct {
		name  string
		items []PlaylistItem
		field string
	}{
		{"no items", nil, "items:"},
		{"no open", []PlaylistItem{{Open: open}, {}}, "items[1]"},
		{"negative gap", []PlaylistItem{{Open: open, Gap: -time.Millisecond}}, "items[0].gap"},
		{"gap over an hour", []PlaylistItem{{Open: open}, {Open: open, Gap: time.Hour + time.Millisecond}}, "items[1].gap"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPlaylist(c.items)
			wantCode(t, err, loa.EINVALID)
			if !strings.HasPrefix(loa.ErrorMessage(err), c.field) {
				t.Errorf("message %q does not start with %q", loa.ErrorMessage(err), c.field)
			}
		})
	}
	if _, err := NewPlaylist([]PlaylistItem{{Open: open, Gap: time.Hour}}); err != nil {
		t.Errorf("a gap of exactly an hour: %v", err)
	}
}

func TestPlaylistFrames(t *testing.T) {
	for _, c := range []struct {
		frames []int
		gaps   []time.Duration
		want   int
	}{
		{nil, nil, 0},
		{[]int{10}, nil, 10},
		{[]int{10, 20}, []time.Duration{0, 0}, 30},
		{[]int{10, 20}, []time.Duration{500 * time.Millisecond, 20 * time.Millisecond}, 56},
		{[]int{1}, []time.Duration{9 * time.Millisecond}, 1},  // rounds down
		{[]int{1}, []time.Duration{10 * time.Millisecond}, 2}, // half a frame rounds up
		{[]int{1}, []time.Duration{29 * time.Millisecond}, 2},
		{[]int{1}, []time.Duration{time.Hour}, 1 + 180000},
	} {
		if got := PlaylistFrames(c.frames, c.gaps); got != c.want {
			t.Errorf("PlaylistFrames(%v, %v) = %d, want %d", c.frames, c.gaps, got, c.want)
		}
	}
}
