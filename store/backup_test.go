package store_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/store"
)

// addMediaBlob stores content as a media blob and a record naming it.
func addMediaBlob(t *testing.T, db *store.DB, id string, content []byte) string {
	t.Helper()
	w, err := db.NewBlob(store.MediaBlob)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	hash, size, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutMedia(context.Background(), &loa.Media{ID: id, Name: id, Hash: hash, Size: size}); err != nil {
		t.Fatal(err)
	}
	return hash
}

// records returns every bucket's keys and values.
func records(t *testing.T, db *store.DB) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := db.ForEachRecord(context.Background(), func(b string, k, v []byte) error {
		if out[b] == nil {
			out[b] = map[string]string{}
		}
		out[b][string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupUnderWriteLoad takes a backup while writers append records,
// restores it, and checks the copy is one moment of the live database:
// every restored record is identical in the live one, the audit log is a
// prefix of the live log, and each writer's areas are a prefix of what it
// wrote (no later write without the earlier ones).
func TestBackupUnderWriteLoad(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	seedAreas(t, db)
	hash := addMediaBlob(t, db, "song", bytes.Repeat([]byte("opus"), 50_000))
	keyFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	const writers = 3
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := db.CreateArea(ctx, &loa.Area{ID: fmt.Sprintf("qn.tk.w%d-%05d", w, n), ParentID: "qn.tk", Name: "x", Kind: loa.AreaCluster}); err != nil {
					errs <- err
					return
				}
				if err := db.Audit(ctx, loa.AuditRecord{Actor: "w", Action: "area.create", Object: fmt.Sprint(w, n)}); err != nil {
					errs <- err
					return
				}
				written.Add(1)
			}
		}()
	}
	loatest.Eventually(t, time.Minute, func() bool { return written.Load() >= 30 }, "writers have written")
	var archive bytes.Buffer
	man, err := db.WriteBackup(ctx, &archive, []store.ArchiveFile{{Name: "tls/ca.crt", Path: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	after := written.Load()
	loatest.Eventually(t, time.Minute, func() bool { return written.Load() >= after+30 }, "writers go on after the backup")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	names := []string{}
	for _, f := range man.Files {
		names = append(names, f.Name)
	}
	if want := []string{"loa.db", "media/" + hash + ".opus", "tls/ca.crt"}; !slices.Equal(names, want) {
		t.Fatalf("manifest files = %v, want %v", names, want)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	rep, err := store.Restore(ctx, bytes.NewReader(archive.Bytes()), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs != 1 || rep.Records["areas"] < 3+30 {
		t.Fatalf("restore report: %d blobs, records %v", rep.Blobs, rep.Records)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "media", hash+".opus")); err != nil || !bytes.Equal(b, bytes.Repeat([]byte("opus"), 50_000)) {
		t.Fatalf("restored blob: %d bytes, %v", len(b), err)
	}
	if st, err := os.Stat(filepath.Join(dir, "tls")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("restored tls dir: %v, mode %v; want 0700", err, st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(dir, "loa.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("restored db: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	restoredDB := mustOpenPath(t, filepath.Join(dir, "loa.db"))
	restored, live := records(t, restoredDB), records(t, db)
	// A restore raises the generation (TestRestoreRaisesGeneration).
	delete(restored["meta"], "generation")
	delete(live["meta"], "generation")

	for b, kv := range restored {
		for k, v := range kv {
			if lv, ok := live[b][k]; !ok {
				t.Errorf("restored %s/%q is not in the live database", b, k)
			} else if lv != v {
				t.Errorf("restored %s/%q = %s, live %s", b, k, v, lv)
			}
		}
	}
	// One moment: the restored audit log is the live one's first records.
	liveAudit, restAudit := sortedKeys(live["audit"]), sortedKeys(restored["audit"])
	if len(restAudit) >= len(liveAudit) {
		t.Fatalf("restored audit has %d records, live %d: the writes after the backup are missing from the live db?", len(restAudit), len(liveAudit))
	}
	if !slices.Equal(restAudit, liveAudit[:len(restAudit)]) {
		t.Fatal("the restored audit log is not a prefix of the live one")
	}
	for w := range writers {
		prefix := fmt.Sprintf("qn.tk.w%d-", w)
		var got []string
		for k := range restored["areas"] {
			if strings.HasPrefix(k, prefix) {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		for i, k := range got {
			if want := fmt.Sprintf("%s%05d", prefix, i); k != want {
				t.Fatalf("writer %d: restored area %d is %s, want %s: a later write without an earlier one", w, i, k, want)
			}
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rewrite decompresses an archive, lets edit change its files (nil drops
// one), and compresses it again: a well-formed archive with other content.
func rewrite(t *testing.T, archive []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = edit(hdr.Name, body)
		if body == nil {
			continue
		}
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	return out.Bytes()
}

func TestRestoreRefusesBadArchives(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	seedAreas(t, db)
	addMediaBlob(t, db, "song", bytes.Repeat([]byte("x"), 10_000))
	var good bytes.Buffer
	if _, err := db.WriteBackup(ctx, &good, nil); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good.Bytes())
	flipped[len(flipped)/2] ^= 0x40

	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "not a gzip stream"},
		{"truncated", good.Bytes()[:good.Len()*2/3], "truncated"},
		{"a flipped byte", flipped, "backup archive"},
		{"a changed blob", rewrite(t, good.Bytes(), func(name string, b []byte) []byte {
			if strings.HasPrefix(name, "media/") {
				b[0] ^= 1
			}
			return b
		}), "does not match the manifest"},
		{"a changed database", rewrite(t, good.Bytes(), func(name string, b []byte) []byte {
			if name == "loa.db" {
				b[len(b)-100] ^= 1
			}
			return b
		}), "loa.db does not match the manifest"},
		{"no manifest", rewrite(t, good.Bytes(), func(name string, b []byte) []byte {
			if name == store.ManifestName {
				return nil
			}
			return b
		}), "no manifest"},
		{"a missing blob", rewrite(t, good.Bytes(), func(name string, b []byte) []byte {
			if strings.HasPrefix(name, "media/") {
				return nil
			}
			return b
		}), "the manifest lists 2 files, the archive holds 1"},
		{"a foreign file", rewrite(t, good.Bytes(), func(name string, b []byte) []byte {
			if strings.HasPrefix(name, "media/") {
				return []byte("x")
			}
			return b
		}), "does not match the manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			_, err := store.Restore(ctx, bytes.NewReader(tc.archive), dir)
			if err == nil {
				t.Fatal("restore succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if _, err := store.VerifyArchive(bytes.NewReader(tc.archive)); err == nil {
				t.Fatal("VerifyArchive passed it")
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a failed restore left %s behind (%v)", dir, err)
			}
		})
	}

	t.Run("a path outside the data dir", func(t *testing.T) {
		bad := rewrite(t, good.Bytes(), func(name string, b []byte) []byte { return b })
		// Rename the blob to escape the directory.
		bad = renameEntry(t, bad, "media/", "../evil")
		_, err := store.Restore(ctx, bytes.NewReader(bad), filepath.Join(t.TempDir(), "new"))
		wantMessage(t, err, "not a file of a data dir")
	})

	t.Run("a non-empty directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o600)
		_, err := store.Restore(ctx, bytes.NewReader(good.Bytes()), dir)
		wantCode(t, err, loa.ECONFLICT)
		if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "mine" {
			t.Fatal("restore touched a non-empty directory")
		}
	})
}

func renameEntry(t *testing.T, archive []byte, prefix, to string) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		body, _ := io.ReadAll(tr)
		if strings.HasPrefix(hdr.Name, prefix) {
			hdr.Name = to
		}
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	return out.Bytes()
}

// FuzzVerifyArchive: an archive is outside input; reading any bytes as one
// must fail cleanly or pass the manifest, never panic.
func FuzzVerifyArchive(f *testing.F) {
	db := mustOpen(f)
	var good bytes.Buffer
	if _, err := db.WriteBackup(context.Background(), &good, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = store.VerifyArchive(bytes.NewReader(b))
	})
}

// archiveOf builds an archive of files (name → content) with a manifest
// that matches them: only what is inside can be wrong.
func archiveOf(t *testing.T, names []string, files map[string][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	man := store.Manifest{Format: store.ArchiveFormat}
	for _, n := range names {
		b := files[n]
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		sum := sha256.Sum256(b)
		man.Files = append(man.Files, store.ManifestEntry{Name: n, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, _ := json.Marshal(man)
	tw.WriteHeader(&tar.Header{Name: store.ManifestName, Mode: 0o644, Size: int64(len(mb)), Typeflag: tar.TypeReg})
	tw.Write(mb)
	tw.Close()
	gw.Close()
	return out.Bytes()
}

// TestRestoreRefusesDamagedDatabase: an archive whose manifest matches but
// whose database is damaged (as a copy of a live file taken under load is)
// is refused with an error, not a panic, and leaves nothing behind.
func TestRestoreRefusesDamagedDatabase(t *testing.T) {
	db := mustOpen(t)
	seedAreas(t, db)
	var raw bytes.Buffer
	if _, err := db.Backup(&raw); err != nil {
		t.Fatal(err)
	}
	good := raw.Bytes()
	pageSize := 4096
	for _, tc := range []struct {
		name string
		db   []byte
	}{
		{"empty", []byte{}},
		{"truncated", good[:len(good)/2]},
		{"a page overwritten", func() []byte {
			b := bytes.Clone(good)
			for i := 2 * pageSize; i < 3*pageSize && i < len(b); i++ {
				b[i] = 0xff
			}
			return b
		}()},
		{"garbage", bytes.Repeat([]byte("loa!"), 4*pageSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			_, err := store.Restore(context.Background(), bytes.NewReader(archiveOf(t, []string{"loa.db"}, map[string][]byte{"loa.db": tc.db})), dir)
			if err == nil {
				t.Fatal("a damaged database was restored")
			}
			t.Log(err)
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Fatalf("a failed restore left %s behind", dir)
			}
		})
	}
}

// TestRestoreRaisesGeneration: a restored station starts above every
// generation its receivers may have seen since the backup (they refuse a
// lower fence).
func TestRestoreRaisesGeneration(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	if _, err := db.NextGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if _, err := db.WriteBackup(ctx, &archive, nil); err != nil {
		t.Fatal(err)
	}
	// The station goes on starting after the backup.
	var last uint64
	for range 5 {
		var err error
		if last, err = db.NextGeneration(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := store.Restore(ctx, bytes.NewReader(archive.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	r, err := store.Open(filepath.Join(dir, store.DBFileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gen, err := r.NextGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gen <= last {
		t.Fatalf("the restored station starts at generation %d, not above %d, which its receivers have seen", gen, last)
	}
}
