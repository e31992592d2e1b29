package media

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/loa-broadcast/loa"
)

// Skip must walk the lacing exactly as Next does, also where packets are
// a multiple of 255 bytes long or span pages.
func TestPacketReaderSkipFraming(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{1, 254, 255, 256, 510, 5000, 65025, 65026, 3, 80}
	for range 100 {
		sizes = append(sizes, 1+rng.IntN(300))
	}
	var packets [][]byte
	for _, n := range sizes {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		packets = append(packets, p)
	}
	file := oggFile(t, 312, packets)
	for k := 0; k <= len(packets); k++ {
		pr, err := NewPacketReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := pr.Skip(k); n != k || err != nil {
			t.Fatalf("Skip(%d) = %d, %v", k, n, err)
		}
		got, err := pr.Next()
		if k == len(packets) {
			if err != io.EOF {
				t.Fatalf("Next after skipping all %d packets: %v, want io.EOF", k, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, packets[k]) {
			t.Fatalf("Next after Skip(%d): %d bytes, %v; want packet %d (%d bytes)", k, len(got), err, k, len(packets[k]))
		}
	}
}

func TestPacketReaderSkip(t *testing.T) {
	_, file := transcodeTone(t, 3, 700)
	packets, _, _ := readOgg(t, file)
	if len(pages(t, file)) < 4 {
		t.Fatalf("want a file of several audio pages, got %d pages", len(pages(t, file)))
	}
	open := func() *PacketReader {
		pr, err := NewPacketReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}

	t.Run("steps", func(t *testing.T) {
		pr := open()
		at := 0
		for _, step := range []int{0, 1, 7, 0, 50, 13} {
			if n, err := pr.Skip(step); n != step || err != nil {
				t.Fatalf("Skip(%d) at %d = %d, %v", step, at, n, err)
			}
			at += step
			got, err := pr.Next()
			if err != nil || !bytes.Equal(got, packets[at]) {
				t.Fatalf("Next at %d after Skip(%d) is not packet %d: %v", at, step, at, err)
			}
			at++
		}
	})

	t.Run("past the end", func(t *testing.T) {
		pr := open()
		if _, err := pr.Skip(10); err != nil {
			t.Fatal(err)
		}
		n, err := pr.Skip(len(packets))
		if err != io.EOF || n != len(packets)-10 {
			t.Fatalf("Skip past the end = %d, %v; want %d, io.EOF", n, err, len(packets)-10)
		}
		if _, err := pr.Next(); err != io.EOF {
			t.Fatalf("Next after the end: %v, want io.EOF", err)
		}
		if n, err := pr.Skip(1); n != 0 || err != io.EOF {
			t.Fatalf("Skip(1) after the end = %d, %v; want 0, io.EOF", n, err)
		}
	})

	t.Run("exactly to the end", func(t *testing.T) {
		pr := open()
		if n, err := pr.Skip(len(packets)); n != len(packets) || err != nil {
			t.Fatalf("Skip(all %d) = %d, %v", len(packets), n, err)
		}
		if _, err := pr.Next(); err != io.EOF {
			t.Fatalf("Next: %v, want io.EOF", err)
		}
	})

	t.Run("negative", func(t *testing.T) {
		_, err := open().Skip(-1)
		wantCode(t, err, loa.EINVALID)
	})

	t.Run("truncated", func(t *testing.T) {
		ps := pages(t, file)
		cut := len(file) - len(ps[len(ps)-1]) - len(ps[len(ps)-2])/2
		pr, err := NewPacketReader(bytes.NewReader(file[:cut]))
		if err != nil {
			t.Fatal(err)
		}
		n, err := pr.Skip(len(packets))
		wantCode(t, err, loa.EINVALID)
		if n >= len(packets) {
			t.Errorf("skipped %d of %d packets of a cut file", n, len(packets))
		}
	})
}

// transcodeTone encodes secs seconds of a freq Hz tone as Transcode stores
// an upload.
func transcodeTone(t testing.TB, secs, freq float64) (Info, []byte) {
	t.Helper()
	var out bytes.Buffer
	in := wavFile(t, tone(48000, 1, secs, freq, 0.3), 48000, 1, 16)
	info, err := Transcode(context.Background(), bytes.NewReader(in), &out, Options{})
	if err != nil {
		t.Fatalf("Transcode: %v", err)
	}
	return info, out.Bytes()
}
