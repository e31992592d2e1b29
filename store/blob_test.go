package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// dirNames lists dir (hidden files too); a missing dir is empty.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeBlob stores data as a new blob of kind and commits it.
func writeBlob(t *testing.T, db *store.DB, kind store.BlobKind, data []byte) (string, int64) {
	t.Helper()
	w, err := db.NewBlob(kind)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	hash, size, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return hash, size
}

func readBlob(t *testing.T, db *store.DB, kind store.BlobKind, hash string) []byte {
	t.Helper()
	r, err := db.OpenBlob(kind, hash)
	if err != nil {
		t.Fatalf("OpenBlob(%s, %s): %v", kind, hash, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBlobCommit(t *testing.T) {
	for _, tc := range []struct {
		kind store.BlobKind
		path func(db *store.DB, hash string) string
	}{
		{store.MediaBlob, (*store.DB).MediaPath},
		{store.FirmwareBlob, (*store.DB).FirmwarePath},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			db := mustOpen(t)
			data := bytes.Repeat([]byte("OggS loa "), 10000)
			w, err := db.NewBlob(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data[:100]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data[100:]); err != nil {
				t.Fatal(err)
			}
			if h, n := w.Sum(); h != sha(data) || n != int64(len(data)) {
				t.Errorf("Sum = %s, %d; want %s, %d", h, n, sha(data), len(data))
			}
			hash, size, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if hash != sha(data) || size != int64(len(data)) {
				t.Errorf("Commit = %s, %d; want %s, %d", hash, size, sha(data), len(data))
			}
			path := tc.path(db, hash)
			if got := dirNames(t, filepath.Dir(path)); len(got) != 1 || got[0] != filepath.Base(path) {
				t.Errorf("blob dir holds %v, want only %s", got, filepath.Base(path))
			}
			if got := readBlob(t, db, tc.kind, hash); !bytes.Equal(got, data) {
				t.Errorf("OpenBlob read %d bytes, not what was written", len(got))
			}
			// Seekable, for HTTP range requests.
			r, _ := db.OpenBlob(tc.kind, hash)
			defer r.Close()
			if end, err := r.Seek(0, io.SeekEnd); err != nil || end != size {
				t.Errorf("Seek to end = %d, %v; want %d", end, err, size)
			}

			// Finished: Abort is a no-op, Write and Commit refuse.
			w.Abort()
			if _, err := os.Stat(path); err != nil {
				t.Errorf("Abort after Commit removed the blob: %v", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after Commit succeeded")
			}
			if _, _, err := w.Commit(); err == nil {
				t.Error("a second Commit succeeded")
			}
		})
	}
}

// The same content twice is one file: the first one, untouched.
func TestBlobDuplicateKeepsExisting(t *testing.T) {
	db := mustOpen(t)
	data := []byte("the 06:00 bulletin")
	hash, _ := writeBlob(t, db, store.MediaBlob, data)
	before, err := os.Stat(db.MediaPath(hash))
	if err != nil {
		t.Fatal(err)
	}
	again, size := writeBlob(t, db, store.MediaBlob, data)
	if again != hash || size != int64(len(data)) {
		t.Fatalf("second Commit = %s, %d; want %s, %d", again, size, hash, len(data))
	}
	after, err := os.Stat(db.MediaPath(hash))
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the existing file was replaced (%v)", err)
	}
	if got := dirNames(t, db.MediaDir()); len(got) != 1 {
		t.Errorf("media dir holds %v, want one file", got)
	}
}

func TestBlobAbort(t *testing.T) {
	db := mustOpen(t)
	w, err := db.NewBlob(store.FirmwareBlob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half an image")); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, filepath.Dir(db.FirmwarePath(sha(nil)))); len(got) != 1 {
		t.Fatalf("while writing, the firmware dir holds %v, want one temp file", got)
	}
	w.Abort()
	w.Abort() // twice is harmless
	if got := dirNames(t, filepath.Dir(db.FirmwarePath(sha(nil)))); len(got) != 0 {
		t.Errorf("Abort left %v", got)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if _, err := db.OpenBlob(store.FirmwareBlob, sha([]byte("half an image"))); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("aborted blob: OpenBlob = %v, want ENOTFOUND", err)
	}
}

// A failed producer (a transcode that errors half-way) aborts: nothing is
// left, and the content was never stored.
func TestBlobFailedCopyLeavesNothing(t *testing.T) {
	db := mustOpen(t)
	w, err := db.NewBlob(store.MediaBlob)
	if err != nil {
		t.Fatal(err)
	}
	broken := io.MultiReader(strings.NewReader("RIFF...."), iotestErrReader{})
	if _, err := io.Copy(w, broken); err == nil {
		t.Fatal("copy from a failing reader succeeded")
	}
	w.Abort()
	if got := dirNames(t, db.MediaDir()); len(got) != 0 {
		t.Errorf("a failed upload left %v", got)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("decoder failed") }

func TestOpenBlobErrors(t *testing.T) {
	db := mustOpen(t)
	if _, err := db.OpenBlob(store.MediaBlob, sha([]byte("never stored"))); loa.ErrorCode(err) != loa.ENOTFOUND || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing blob: %v, want ENOTFOUND wrapping ErrNotExist", err)
	}
	for _, bad := range []string{"", "../../loa", strings.Repeat("AB", 32), "abc"} {
		if _, err := db.OpenBlob(store.MediaBlob, bad); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("OpenBlob(%q) = %v, want EINVALID", bad, err)
		}
	}
	// Firmware images are named by their SHA-256 only.
	if _, err := db.OpenBlob(store.FirmwareBlob, strings.Repeat("ab", 8)); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("short firmware hash: %v, want EINVALID", err)
	}
	if _, err := db.NewBlob("video"); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("NewBlob of an unknown kind: %v, want EINVALID", err)
	}
	if _, err := db.OpenBlob("video", sha(nil)); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("OpenBlob of an unknown kind: %v, want EINVALID", err)
	}
}

func TestRemoveBlob(t *testing.T) {
	db := mustOpen(t)
	hash, _ := writeBlob(t, db, store.MediaBlob, []byte("orphan"))
	if err := db.RemoveBlob(store.MediaBlob, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OpenBlob(store.MediaBlob, hash); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("after RemoveBlob: %v, want ENOTFOUND", err)
	}
	if err := db.RemoveBlob(store.MediaBlob, hash); err != nil {
		t.Errorf("removing a missing blob: %v", err)
	}
}

// A crash mid-upload leaves temp files; the next Open removes them, says
// so, and keeps every committed blob.
func TestOpenRemovesInterruptedUploads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	media, _ := writeBlob(t, db, store.MediaBlob, []byte("kept audio"))
	fw, _ := writeBlob(t, db, store.FirmwareBlob, []byte("kept image"))
	for _, kind := range []store.BlobKind{store.MediaBlob, store.FirmwareBlob} {
		w, err := db.NewBlob(kind) // never finished: the process "dies"
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
	}
	if err := os.WriteFile(filepath.Join(db.MediaDir(), ".upload-123"), []byte("older crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	db, err = store.Open(path, store.Options{Timeout: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := dirNames(t, db.MediaDir()); len(got) != 1 || got[0] != filepath.Base(db.MediaPath(media)) {
		t.Errorf("media dir after Open: %v, want only the committed blob", got)
	}
	if got := dirNames(t, filepath.Dir(db.FirmwarePath(fw))); len(got) != 1 || got[0] != filepath.Base(db.FirmwarePath(fw)) {
		t.Errorf("firmware dir after Open: %v, want only the committed blob", got)
	}
	if got := readBlob(t, db, store.FirmwareBlob, fw); string(got) != "kept image" {
		t.Errorf("firmware blob reads %q", got)
	}
	for _, want := range []string{"dir=" + db.MediaDir() + " count=2", "dir=" + filepath.Dir(db.FirmwarePath(fw)) + " count=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("Open's log does not say %q:\n%s", want, logs.String())
		}
	}
}

// A database whose firmware directory was never made opens fine.
func TestOpenWithoutBlobDirs(t *testing.T) {
	var logs bytes.Buffer
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "interrupted") {
		t.Errorf("a fresh Open complained:\n%s", logs.String())
	}
}

// blobSource is a replicator that holds every blob and can fetch one
// from elsewhere (another cluster node's copy).
type blobSource struct {
	db      *store.DB
	bytes   []byte
	fetched int
}

func (b *blobSource) Held(context.Context, store.BlobKind, string) error { return nil }

func (b *blobSource) FetchBlob(_ context.Context, kind store.BlobKind, hash string) error {
	b.fetched++
	return b.db.PutBlob(kind, hash, bytes.NewReader(b.bytes))
}

// TestOpenBlobFetchesWhatIsMissing: a blob a node lacks is fetched
// through the replicator when opened (a new cluster leader resuming a
// session before its catch-up pulled the audio), and a single controller
// answers not found as before.
func TestOpenBlobFetchesWhatIsMissing(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	data := []byte("OggS: not really, but bytes")
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if _, err := db.OpenBlob(store.MediaBlob, hash); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("a missing blob without a replicator: %v, want not found", err)
	}
	src := &blobSource{db: db, bytes: data}
	db.SetBlobReplicator(src)
	f, err := db.OpenBlob(store.MediaBlob, hash)
	if err != nil {
		t.Fatalf("a missing blob with a replicator that can fetch it: %v", err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) || src.fetched != 1 {
		t.Errorf("read %q after %d fetches, want the fetched bytes after one", got, src.fetched)
	}
}
