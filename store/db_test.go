package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// clock is a fake Now that advances one second per call, so every stamp
// differs and "newest first" orderings are deterministic.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// mustOpen opens a fresh database in a temp dir and closes it at the end.
func mustOpen(t testing.TB) *store.DB {
	t.Helper()
	return mustOpenPath(t, filepath.Join(t.TempDir(), "loa.db"))
}

func mustOpenPath(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{Now: newClock().Now, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// wantCode fails unless err carries the domain error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := loa.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (err %v), want %q", got, err, code)
	}
}

// wantMessage fails unless err's domain message contains every part.
func wantMessage(t *testing.T, err error, parts ...string) {
	t.Helper()
	msg := loa.ErrorMessage(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("error message %q does not contain %q", msg, p)
		}
	}
}

// seedAreas creates province p, commune p/c and cluster c/k.
func seedAreas(t testing.TB, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []*loa.Area{
		{ID: "qn", Name: "Quảng Nam", Kind: loa.AreaProvince},
		{ID: "qn.tk", ParentID: "qn", Name: "Tam Kỳ", Kind: loa.AreaCommune},
		{ID: "qn.tk.1", ParentID: "qn.tk", Name: "Thôn 1", Kind: loa.AreaCluster},
	} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpen_CreatesDirectoryAndMediaDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "loa.db")
	db := mustOpenPath(t, path)

	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("db file: %v", err)
	}
	if want := filepath.Join(dir, "media"); db.MediaDir() != want {
		t.Errorf("MediaDir() = %q, want %q", db.MediaDir(), want)
	}
	if fi, err := os.Stat(db.MediaDir()); err != nil || !fi.IsDir() {
		t.Errorf("media dir not created: %v", err)
	}
}

func TestOpen_EmptyPath(t *testing.T) {
	_, err := store.Open("", store.Options{})
	wantCode(t, err, loa.EINVALID)
}

func TestOpen_InUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	mustOpenPath(t, path)

	db2, err := store.Open(path, store.Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		db2.Close()
		t.Fatal("second Open of a database in use succeeded")
	}
	wantCode(t, err, loa.EUNAVAILABLE)
	wantMessage(t, err, path, "in use by another process")
}

func TestOpen_AfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock is released on Close, so the next opener gets in.
	mustOpenPath(t, path)
}

func TestMediaPath(t *testing.T) {
	db := mustOpen(t)
	hash := strings.Repeat("ab", 32)
	if got, want := db.MediaPath(hash), filepath.Join(db.MediaDir(), hash+".opus"); got != want {
		t.Errorf("MediaPath = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("AB", 32), strings.Repeat("zz", 32), "abc", strings.Repeat("a", 129)} {
		if got := db.MediaPath(bad); got != "" {
			t.Errorf("MediaPath(%q) = %q, want \"\"", bad, got)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	db := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.CreateArea(ctx, &loa.Area{ID: "qn", Name: "Quảng Nam", Kind: loa.AreaProvince})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateArea with cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := db.Areas(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Areas with cancelled ctx: %v, want context.Canceled", err)
	}
	as, err := db.Areas(context.Background())
	if err != nil || len(as) != 0 {
		t.Fatalf("Areas = %v, %v; want none stored", as, err)
	}
}

// populate writes one of everything and returns the secrets it was given.
func populate(t *testing.T, db *store.DB) (devicePassword, tokenSecret string) {
	t.Helper()
	ctx := context.Background()
	seedAreas(t, db)
	pw, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1", Name: "Loa chợ"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutMedia(ctx, &loa.Media{ID: "m1", Name: "Bản tin", Hash: strings.Repeat("0f", 32), Size: 100}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSession(ctx, &loa.Session{ID: "s1", MediaID: "m1", Priority: 40, State: loa.SessionPlaying}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-1", Online: true, Boot: 3}}); err != nil {
		t.Fatal(err)
	}
	secret, err := db.CreateToken(ctx, &loa.Token{ID: "admin", Name: "Admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(ctx, loa.AuditRecord{Actor: "admin", Action: "session.start", Object: "s1"}); err != nil {
		t.Fatal(err)
	}
	return pw, secret
}

// checkPopulated asserts everything populate wrote is readable from db.
func checkPopulated(t *testing.T, db *store.DB, devicePassword, tokenSecret string) {
	t.Helper()
	ctx := context.Background()
	if as, err := db.Areas(ctx); err != nil || len(as) != 3 {
		t.Errorf("Areas = %d, %v; want 3", len(as), err)
	}
	if d, err := db.Device(ctx, "rx-1"); err != nil || d.Name != "Loa chợ" || d.AreaID != "qn.tk.1" {
		t.Errorf("Device = %+v, %v", d, err)
	}
	if ok, err := db.CheckDeviceCredentials(ctx, "rx-1", devicePassword); err != nil || !ok {
		t.Errorf("CheckDeviceCredentials = %v, %v; want true", ok, err)
	}
	if m, err := db.MediaByHash(ctx, strings.Repeat("0f", 32)); err != nil || m.ID != "m1" {
		t.Errorf("MediaByHash = %+v, %v", m, err)
	}
	if s, err := db.Session(ctx, "s1"); err != nil || s.Priority != 40 || s.State != loa.SessionPlaying {
		t.Errorf("Session = %+v, %v", s, err)
	}
	if st, err := db.DeviceStates(ctx); err != nil || len(st) != 1 || st[0].Boot != 3 || !st[0].Online {
		t.Errorf("DeviceStates = %+v, %v", st, err)
	}
	if tok, err := db.TokenBySecret(ctx, tokenSecret); err != nil || tok.ID != "admin" || tok.Role != loa.RoleAdmin {
		t.Errorf("TokenBySecret = %+v, %v", tok, err)
	}
	if log, err := db.AuditLog(ctx, 0); err != nil || len(log) != 1 || log[0].Object != "s1" {
		t.Errorf("AuditLog = %+v, %v", log, err)
	}
}

func TestReopen_Persists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw, secret := populate(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	checkPopulated(t, mustOpenPath(t, path), pw, secret)
}

func TestBackup(t *testing.T) {
	db := mustOpen(t)
	pw, secret := populate(t, db)

	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	// Writes after the backup must not appear in it.
	if err := db.Audit(context.Background(), loa.AuditRecord{Action: "after.backup"}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "restored", "loa.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := mustOpenPath(t, path)
	checkPopulated(t, restored, pw, secret)
}
