package store

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// A backup archive is a gzip-compressed tar of a data dir's files under the
// names they have in it: loa.db (the database as one read transaction saw
// it), media/<sha256>.opus and firmware/<sha256>.img (every blob the
// database references), the extra files the caller adds (keys), and last
// MANIFEST.json, the size and SHA-256 of every file before it. Restore
// trusts nothing it has not checked against the manifest.
const (
	ArchiveFormat = "loa-backup/1"
	ManifestName  = "MANIFEST.json"
	DBFileName    = "loa.db"
)

// Manifest describes a backup archive; it is the archive's last file.
type Manifest struct {
	Format    string          `json:"format"`
	CreatedAt time.Time       `json:"created_at"`
	Schema    uint64          `json:"schema"` // the database's schema version
	Files     []ManifestEntry `json:"files"`
}

// ManifestEntry is one file of an archive.
type ManifestEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ArchiveFile is a file from outside the database a backup carries: Path
// is where it is read from, Name where it goes in a restored data dir.
type ArchiveFile struct {
	Name string
	Path string
}

// extraNames are the names an ArchiveFile may have: the files of a data
// dir that are not the database or blobs. Restore writes nothing else.
var extraNames = map[string]os.FileMode{
	"tls/ca.crt": 0o644, "tls/ca.key": 0o600, "tls/server.crt": 0o644, "tls/server.key": 0o600,
	"admin-token": 0o600, "admin-password": 0o600, "firmware.pub": 0o644,
	"station.key": 0o600, "station.pub": 0o644,
}

var blobName = regexp.MustCompile(`^(media/[0-9a-f]{2,128}\.opus|firmware/[0-9a-f]{64}\.img)$`)

// archiveMode is the mode a file of the archive is restored with, and
// whether the name is one an archive may hold at all.
func archiveMode(name string) (os.FileMode, bool) {
	if name == DBFileName {
		return 0o600, true
	}
	if blobName.MatchString(name) {
		return 0o640, true
	}
	m, ok := extraNames[name]
	return m, ok
}

// WriteBackup writes a backup archive of the station to w: the database
// copied in one read transaction to a temp file beside it (so writers wait
// at most for that local copy, never for w), then the blobs that
// transaction referenced and the extra files, streamed outside it. It
// returns the manifest it wrote last.
func (db *DB) WriteBackup(ctx context.Context, w io.Writer, extra []ArchiveFile) (*Manifest, error) {
	for _, f := range extra {
		if _, ok := extraNames[f.Name]; !ok {
			return nil, loa.Errorf(loa.EINVALID, "backup: %q is not a file a data dir holds", f.Name)
		}
	}
	// The spool is unlinked at once: open, it works; a crash leaves nothing.
	spool, err := os.CreateTemp(filepath.Dir(db.Path()), ".backup-*.db")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	os.Remove(spool.Name())
	defer spool.Close()
	man := &Manifest{Format: ArchiveFormat, CreatedAt: db.now().UTC()}
	var blobs []string // archive names of the referenced blobs
	err = db.view(ctx, func(tx *bolt.Tx) error {
		if _, err := tx.WriteTo(spool); err != nil {
			return err
		}
		man.Schema = schemaVersion(tx)
		blobs, err = referencedBlobs(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backup: copy the database: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}

	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed) // audio is Opus already: speed over ratio
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	add := func(name, src string, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var size int64
		if f, ok := r.(*os.File); ok {
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("backup: %s: %w", src, err)
			}
			size = st.Size()
		}
		mode, _ := archiveMode(name)
		hdr := &tar.Header{Name: name, Mode: int64(mode), Size: size, ModTime: man.CreatedAt, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("backup: %s: %w", name, err)
		}
		h := sha256.New()
		// Exactly size bytes: the header promised them.
		if _, err := io.CopyN(io.MultiWriter(tw, h), r, size); err != nil {
			return fmt.Errorf("backup: %s: %w", name, err)
		}
		man.Files = append(man.Files, ManifestEntry{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	addFile := func(name, src string) error {
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("backup: %s: %w", name, err)
		}
		defer f.Close()
		return add(name, src, f)
	}

	if err := add(DBFileName, db.Path(), spool); err != nil {
		return nil, err
	}
	dir := filepath.Dir(db.Path())
	for _, name := range blobs {
		if err := addFile(name, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return nil, fmt.Errorf("%w (the database references it: restore it or remove its record)", err)
		}
	}
	for _, f := range extra {
		if err := addFile(f.Name, f.Path); err != nil {
			return nil, err
		}
	}
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(data)), ModTime: man.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return man, nil
}

func schemaVersion(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keySchemaVersion)
	var n uint64
	for _, b := range v { // big-endian, as migrate writes it
		n = n<<8 | uint64(b)
	}
	return n
}

// referencedBlobs lists, sorted and once each, the archive names of the
// blobs the database's media and firmware records name.
func referencedBlobs(tx *bolt.Tx) ([]string, error) {
	set := map[string]bool{}
	err := tx.Bucket(bucketMedia).ForEach(func(k, v []byte) error {
		var m loa.Media
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode media/%s: %w", k, err)
		}
		if m.Hash != "" {
			set["media/"+m.Hash+".opus"] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketFirmware).ForEach(func(k, v []byte) error {
		var f loa.FirmwareImage
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("decode firmware/%s: %w", k, err)
		}
		if f.SHA256 != "" {
			set["firmware/"+f.SHA256+".img"] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for n := range set {
		if !blobName.MatchString(n) {
			return nil, fmt.Errorf("a record names the blob %q, which is no content hash", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// errArchive marks what is wrong with an archive itself (damaged,
// truncated, tampered), as opposed to where it is being restored.
func errArchive(format string, args ...any) error {
	return loa.Errorf(loa.EINVALID, "backup archive: "+format, args...)
}

// readArchive reads a whole archive, handing each file but the manifest to
// sink (nil: read and hash only), and checks every file against the
// manifest: same names, sizes and SHA-256, nothing more or less.
func readArchive(r io.Reader, sink func(name string, mode os.FileMode, r io.Reader) error) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, errArchive("not a gzip stream (%v)", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]ManifestEntry{}
	var order []string
	var man *Manifest
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errArchive("damaged or truncated (%v)", err)
		}
		if man != nil {
			return nil, errArchive("%q follows the manifest, which must be last", hdr.Name)
		}
		if hdr.Name == ManifestName {
			man = new(Manifest)
			if hdr.Size > 64<<20 {
				return nil, errArchive("the manifest is %d bytes", hdr.Size)
			}
			if err := json.NewDecoder(io.LimitReader(tr, hdr.Size)).Decode(man); err != nil {
				return nil, errArchive("manifest: %v", err)
			}
			continue
		}
		mode, ok := archiveMode(hdr.Name)
		if !ok || hdr.Typeflag != tar.TypeReg || path.Clean(hdr.Name) != hdr.Name {
			return nil, errArchive("%q is not a file of a data dir", hdr.Name)
		}
		if _, dup := seen[hdr.Name]; dup {
			return nil, errArchive("%q appears twice", hdr.Name)
		}
		h := sha256.New()
		body := io.TeeReader(tr, h)
		if sink != nil {
			err = sink(hdr.Name, mode, body)
		} else {
			_, err = io.Copy(io.Discard, body)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
				return nil, errArchive("%s: damaged or truncated (%v)", hdr.Name, err)
			}
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		seen[hdr.Name] = ManifestEntry{Name: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
		order = append(order, hdr.Name)
	}
	if man == nil {
		return nil, errArchive("no manifest: the archive is truncated or not a Loa backup")
	}
	if man.Format != ArchiveFormat {
		return nil, errArchive("format %q, this build reads %q", man.Format, ArchiveFormat)
	}
	if len(man.Files) != len(order) {
		return nil, errArchive("the manifest lists %d files, the archive holds %d", len(man.Files), len(order))
	}
	for _, want := range man.Files {
		got, ok := seen[want.Name]
		if !ok {
			return nil, errArchive("%s is in the manifest but not in the archive", want.Name)
		}
		if got != want {
			return nil, errArchive("%s does not match the manifest: %d bytes sha256 %s, want %d bytes sha256 %s",
				want.Name, got.Size, got.SHA256, want.Size, want.SHA256)
		}
		if h := baseHash(want.Name); blobName.MatchString(want.Name) && len(h) == 2*sha256.Size && h != want.SHA256 {
			return nil, errArchive("%s holds content of sha256 %s", want.Name, want.SHA256)
		}
	}
	if _, ok := seen[DBFileName]; !ok {
		return nil, errArchive("no %s", DBFileName)
	}
	return man, nil
}

func baseHash(name string) string {
	b := path.Base(name)
	return b[:len(b)-len(path.Ext(b))]
}

// VerifyArchive reads a whole archive and checks it against its manifest
// without writing anything.
func VerifyArchive(r io.Reader) (*Manifest, error) {
	return readArchive(r, nil)
}

// RestoreReport is what Restore checked.
type RestoreReport struct {
	Manifest *Manifest
	Records  map[string]int // bucket → records decoded
	Blobs    int            // blobs referenced and present
}

// Restore writes the archive r into dir, a new data dir (absent or empty;
// anything else is refused), and checks everything: every file against
// the manifest, the database's pages (bbolt's check), every record decoded
// as the type its bucket holds, and every blob a record references
// present. On any failure dir is left as it was found: absent or empty.
func Restore(ctx context.Context, r io.Reader, dir string) (rep *RestoreReport, err error) {
	if dir == "" {
		return nil, loa.Errorf(loa.EINVALID, "restore: a data directory is required")
	}
	entries, err := os.ReadDir(dir)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("restore: %w", err)
	case len(entries) > 0:
		return nil, loa.Errorf(loa.ECONFLICT, "restore: %s is not empty; restore into a new directory", dir)
	}
	defer func() {
		if err != nil {
			clearDir(dir)
			if created {
				os.Remove(dir)
			}
		}
	}()
	man, err := readArchive(r, func(name string, mode os.FileMode, body io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		dirMode := os.FileMode(0o750)
		if strings.HasPrefix(name, "tls/") {
			dirMode = 0o700 // as pki makes it: it holds the CA key
		}
		if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, body); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	rep = &RestoreReport{Manifest: man}
	if err := verifyRestored(ctx, dir, rep); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := raiseRestoredGeneration(ctx, dir, time.Now()); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return rep, nil
}

// clearDir removes what a failed restore wrote, leaving dir itself.
func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// recordDecoders decode the values of the buckets that hold records; the
// other buckets are indexes of them.
var recordDecoders = map[string]func([]byte) error{
	string(bucketAreas):         decodeAs[loa.Area],
	string(bucketDevices):       decodeAs[loa.Device],
	string(bucketDeviceStates):  decodeAs[loa.DeviceState],
	string(bucketMedia):         decodeAs[loa.Media],
	string(bucketSessions):      decodeAs[loa.Session],
	string(bucketTokens):        decodeAs[tokenRecord],
	string(bucketAudit):         decodeAs[loa.AuditRecord],
	string(bucketPlaylists):     decodeAs[loa.Playlist],
	string(bucketFallbacks):     decodeAs[loa.Fallback],
	string(bucketSchedules):     decodeAs[loa.Schedule],
	string(bucketCalendars):     decodeAs[loa.Calendar],
	string(bucketPlayLog):       decodeAs[loa.PlayLogEntry],
	string(bucketHealthHourly):  decodeAs[loa.HealthHour],
	string(bucketAlarms):        decodeAs[loa.Alarm],
	string(bucketFirmware):      decodeAs[loa.FirmwareImage],
	string(bucketRollouts):      decodeAs[loa.Rollout],
	string(bucketGroupCommands): decodeAs[loa.GroupCommand],
	string(bucketAlerts):        decodeAs[loa.Alert],
	string(bucketDeliveries):    decodeAs[loa.ReceiverDelivery],
	string(bucketClaims):        decodeAs[claimRecord],
	string(bucketUsers):         decodeAs[userRecord],
	string(bucketUserSessions):  decodeAs[sessionRecord],
	string(bucketDrafts):        decodeAs[loa.Draft],
	string(bucketStored):        decodeAs[loa.StoredMessage],
	string(bucketRelays):        decodeAs[loa.Relay],
}

// indexTargets are the index buckets whose values are ids of another
// bucket's records: each must name one that exists.
var indexTargets = map[string]string{
	string(bucketMediaByHash):  string(bucketMedia),
	string(bucketTokensByHash): string(bucketTokens),
	string(bucketClaimsByHash): string(bucketClaims),
	string(bucketAlertsByCAP):  string(bucketAlerts),
}

func decodeAs[T any](b []byte) error {
	var v T
	return json.Unmarshal(b, &v)
}

// verifyRestored opens the restored database (migrating an older schema)
// and checks its pages, records and blobs.
func verifyRestored(ctx context.Context, dir string, rep *RestoreReport) (err error) {
	// bbolt panics on some damaged files (a bad freelist page) rather than
	// failing: here that is a damaged database, not a crash.
	defer func() {
		if p := recover(); p != nil {
			err = loa.Errorf(loa.EINVALID, "the restored database is damaged: %v", p)
		}
	}()
	path := filepath.Join(dir, DBFileName)
	// The meta pages are checked before bbolt maps the file (check.go):
	// a file shorter than they say faults (SIGBUS), which no recover catches.
	if _, err := os.Stat(path); err != nil {
		return loa.Errorf(loa.EINVALID, "the archive holds no database: %v", err)
	}
	if err := checkFile(path); err != nil {
		return loa.Errorf(loa.EINVALID, "the restored database is damaged: %v", err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		return fmt.Errorf("open the restored database: %w", err)
	}
	defer db.Close()
	rep.Records = map[string]int{}
	return db.view(ctx, func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("the restored database is inconsistent: %w", err)
		}
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			dec := recordDecoders[string(name)]
			if dec == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return nil // a nested bucket
				}
				if err := dec(v); err != nil {
					return fmt.Errorf("record %s/%s: %w", name, k, err)
				}
				rep.Records[string(name)]++
				return nil
			})
		})
		if err != nil {
			return err
		}
		for idx, target := range indexTargets {
			err := tx.Bucket([]byte(idx)).ForEach(func(k, v []byte) error {
				if tx.Bucket([]byte(target)).Get(v) == nil {
					return loa.Errorf(loa.EINVALID, "index %s/%x names %s %q, which is missing", idx, k, target, v)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		blobs, err := referencedBlobs(tx)
		if err != nil {
			return err
		}
		for _, name := range blobs {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
				return fmt.Errorf("blob %s, referenced by the database, is missing: %w", name, err)
			}
		}
		rep.Blobs = len(blobs)
		return nil
	})
}

// ForEachRecord calls fn with every key and value of every bucket, in one
// read transaction; fn must not keep k or v. For comparing databases.
func (db *DB) ForEachRecord(ctx context.Context, fn func(bucket string, k, v []byte) error) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return fn(string(name), k, v) })
		})
	})
}
