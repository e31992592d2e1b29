package station_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// toneWAV is one second of the attention tone as a WAV file.
func toneWAV(t *testing.T) []byte {
	t.Helper()
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, media.AttentionTone(48000)[:48000], 48000, 1); err != nil {
		t.Fatal(err)
	}
	return wav.Bytes()
}

// countingReader counts what was read of an upload.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

// With one worker and one place in the queue, a third upload is refused
// at once, before its body is read, with a hint of when to retry; an
// alert's embedded audio still goes through; once the two finish, uploads
// are taken again.
func TestMediaTranscodeQueueBounded(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := station.NewMedia(db, media.Options{}, station.TranscodeLimits{Workers: 1, Queue: 1}, discard)
	ctx := context.Background()
	wav := toneWAV(t)

	// Two uploads still arriving hold the worker's place and the queue's.
	type result struct {
		m   *loa.Media
		err error
	}
	var pipes []*io.PipeWriter
	results := make(chan result, 2)
	for range 2 {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		started := make(chan struct{})
		go func() {
			close(started)
			med, err := m.ImportMedia(ctx, "slow", pr, "tok")
			results <- result{med, err}
		}()
		<-started
		// Wait until it is admitted: its body is being read.
		if _, err := pw.Write(wav[:10]); err != nil {
			t.Fatal(err)
		}
	}

	third := &countingReader{r: bytes.NewReader(wav)}
	_, err = m.ImportMedia(ctx, "third", third, "tok")
	if loa.ErrorCode(err) != loa.EUNAVAILABLE {
		t.Fatalf("third upload: %v, want %s", err, loa.EUNAVAILABLE)
	}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
		t.Errorf("the refusal %v carries no Retry-After", err)
	}
	if third.read != 0 {
		t.Errorf("the refused upload was read (%d bytes)", third.read)
	}

	// An alert's audio has a worker of its own.
	if _, err := m.Urgent().ImportMedia(ctx, "alert audio", bytes.NewReader(wav), "tok"); err != nil {
		t.Errorf("urgent import while the queue is full: %v", err)
	}

	for _, pw := range pipes {
		pw.Write(wav[10:])
		pw.Close()
	}
	for range 2 {
		if r := <-results; r.err != nil {
			t.Errorf("queued upload: %v", r.err)
		}
	}
	if _, err := m.ImportMedia(ctx, "after", bytes.NewReader(wav), "tok"); err != nil {
		t.Errorf("upload once the queue drained: %v", err)
	}
}
