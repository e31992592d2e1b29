package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/store"
)

// An empty or truncated database is refused with a clear error and the
// corrupt-database exit status; neither it nor admin-token is rewritten.
// (A missing one starts a new station: every other test.)
func TestSystemDamagedDatabaseRefused(t *testing.T) {
	// A real database to truncate.
	cfg := testConfig(t)
	m := openMain(t, cfg)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(cfg.DataDir, "loa.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one page", good[:4096]},
		// Short of the last page its meta pages count (bbolt's file is
		// grown ahead of its pages: cutting its tail alone may leave a
		// whole database).
		{"short of its last page", good[:lastPageEnd(t, good)-4096]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			dbPath, tokPath := filepath.Join(cfg.DataDir, "loa.db"), filepath.Join(cfg.DataDir, "admin-token")
			if err := os.WriteFile(dbPath, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokPath, []byte("the operator's secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			m := NewMain(cfg, testLogger(t))
			err := m.Open(context.Background())
			if err == nil {
				m.Close()
				t.Fatal("a damaged database was opened")
			}
			if !errors.Is(err, store.ErrCorrupt) || ExitCode(err) != ExitCorruptDatabase || !strings.Contains(err.Error(), dbPath) {
				t.Fatalf("err = %v (exit %d), want the corrupt-database error naming %s", err, ExitCode(err), dbPath)
			}
			if b, _ := os.ReadFile(dbPath); string(b) != string(tc.data) {
				t.Error("the damaged database was rewritten")
			}
			if b, _ := os.ReadFile(tokPath); string(b) != "the operator's secret\n" {
				t.Errorf("admin-token rewritten: %q", b)
			}
		})
	}
	if ExitCode(errors.New("other")) != ExitFailure {
		t.Error("an ordinary failure has the corrupt-database status")
	}
}

// The disk_space alarm is raised below 5 % free and cleared above 7 %.
func TestSystemDiskSpaceAlarm(t *testing.T) {
	cfg := testConfig(t)
	cfg.DiskCheckEvery = 5 * time.Millisecond
	var freePct, checks atomic.Int64
	freePct.Store(50)
	m := NewMain(cfg, testLogger(t))
	m.statfs = func(dir string) (uint64, uint64, error) {
		if dir != cfg.DataDir {
			t.Errorf("statfs of %s, want the data dir", dir)
		}
		checks.Add(1)
		return uint64(freePct.Load()) << 20, 100 << 20, nil
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	active := func() *loa.Alarm {
		for _, a := range m.Alarms.Active() {
			if a.Kind == loa.AlarmDiskSpace {
				return &a
			}
		}
		return nil
	}
	c := api.NewClient(m.URL(), m.AdminToken)
	freePct.Store(4)
	loatest.Eventually(t, loatest.Wait, func() bool { return active() != nil }, "disk_space alarm raised at 4% free")
	if a := active(); a.Device != "" || a.Value != 4 || a.Threshold != 5 || !strings.Contains(a.Msg, "4.0% free") {
		t.Fatalf("alarm = %+v", a)
	}
	var listed []loa.Alarm
	if err := c.Do(context.Background(), "GET", "/api/v1/alarms?kind=disk_space", "", nil, &listed); err != nil || len(listed) != 1 {
		t.Fatalf("GET alarms?kind=disk_space = %v, %v", listed, err)
	}
	freePct.Store(6) // between the bounds: stays
	before := checks.Load()
	loatest.Eventually(t, loatest.Wait, func() bool { return checks.Load() > before+2 || active() == nil }, "a few checks")
	if active() == nil {
		t.Fatal("cleared at 6% free, below the clear bound")
	}
	freePct.Store(8)
	loatest.Eventually(t, loatest.Wait, func() bool { return active() == nil }, "disk_space alarm cleared at 8% free")
}

// healthz returns /healthz's status and body.
func healthz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// A data dir on a tmpfs that fills: a change answers 507 and is not
// there, the audit log holds nothing of it, /healthz says why; once space
// is freed the station finds out by itself and a change succeeds.
func TestSystemDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs data dir needs root; store and api tests inject ENOSPC instead")
	}
	cfg := testConfig(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "loa-test", cfg.DataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); store and api tests inject ENOSPC instead", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", cfg.DataDir).Run() })
	cfg.DiskCheckEvery = 10 * time.Millisecond
	m := openMain(t, cfg)
	defer m.Close()
	ctx := context.Background()
	c := api.NewClient(m.URL(), m.AdminToken)
	if err := c.CreateArea(ctx, loa.Area{ID: "p", Name: "Tỉnh P", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, loatest.Wait, func() bool { return len(m.Alarms.Active()) == 0 }, "no alarm with space")

	fill := filepath.Join(cfg.DataDir, "filler")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	_ = f.Close()
	loatest.Eventually(t, loatest.Wait, func() bool {
		for _, a := range m.Alarms.Active() {
			if a.Kind == loa.AlarmDiskSpace {
				return true
			}
		}
		return false
	}, "disk_space alarm once the disk is full")
	// (The alarm was stored in pages bbolt had free; a change with big
	// values needs new ones.)
	auditBefore, err := m.DB.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var refused *api.ClientError
	var id string
	for i := range 200 {
		id = "c" + strings.Repeat("x", 40) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		err := c.CreateArea(ctx, loa.Area{ID: id, ParentID: "p", Name: strings.Repeat("Xã ", 45), Kind: loa.AreaCommune, Code: strings.Repeat("9", 64)})
		if err != nil {
			if !errors.As(err, &refused) {
				t.Fatal(err)
			}
			break
		}
		auditBefore, _ = m.DB.AuditLog(ctx, 0)
	}
	if refused == nil || refused.Status != http.StatusInsufficientStorage || refused.Code != loa.ENOSPACE || !strings.Contains(refused.Message, "disk is full") {
		t.Fatalf("change on a full disk: %v, want 507 insufficient_storage", refused)
	}
	if _, err := m.DB.Area(ctx, id); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("the refused area: %v", err)
	}
	if after, err := m.DB.AuditLog(ctx, 0); err != nil || len(after) != len(auditBefore) {
		t.Fatalf("audit records %d after the refused change, %d before (%v)", len(after), len(auditBefore), err)
	}
	if st, body := healthz(t, m.URL()); st != http.StatusServiceUnavailable || body["ok"] != false {
		t.Fatalf("healthz on a full disk = %d %v", st, body)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, loatest.Wait, func() bool { st, _ := healthz(t, m.URL()); return st == http.StatusOK }, "healthz ok once space is back, without a client's write")
	if err := c.CreateArea(ctx, loa.Area{ID: id, ParentID: "p", Name: "Xã", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
}

// The same through an injected write fault, wherever no tmpfs can be
// mounted: 507, nothing changed, /healthz unhealthy, then healthy again by
// the controller's own probe once writes pass.
func TestSystemWriteFaultInjected(t *testing.T) {
	cfg := testConfig(t)
	cfg.DiskCheckEvery = 5 * time.Millisecond
	m := NewMain(cfg, testLogger(t))
	m.storeFaults = new(store.WriteFaults)
	m.statfs = func(string) (uint64, uint64, error) { return 50 << 20, 100 << 20, nil }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	c := api.NewClient(m.URL(), m.AdminToken)
	if err := c.CreateArea(ctx, loa.Area{ID: "p", Name: "Tỉnh P", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	auditBefore, err := m.DB.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.storeFaults.Arm(); err != nil {
		t.Fatal(err)
	}
	err = c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "Xã A", Kind: loa.AreaCommune})
	var refused *api.ClientError
	if !errors.As(err, &refused) || refused.Status != http.StatusInsufficientStorage || refused.Code != loa.ENOSPACE {
		t.Fatalf("change with writes failing: %v, want 507 insufficient_storage", err)
	}
	if st, body := healthz(t, m.URL()); st != http.StatusServiceUnavailable || body["ok"] != false {
		t.Fatalf("healthz with writes failing = %d %v", st, body)
	}
	if err := m.storeFaults.Disarm(); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, loatest.Wait, func() bool { st, _ := healthz(t, m.URL()); return st == http.StatusOK }, "healthz ok again by the probe")
	if _, err := m.DB.Area(ctx, "a"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("the refused area: %v", err)
	}
	if after, err := m.DB.AuditLog(ctx, 0); err != nil || len(after) != len(auditBefore) {
		t.Fatalf("audit records %d after the refused change, %d before (%v)", len(after), len(auditBefore), err)
	}
}

// lastPageEnd is where the pages in use of a bbolt file end: its meta
// pages' high-water mark (the higher of the two) times the page size.
func lastPageEnd(t *testing.T, db []byte) int {
	t.Helper()
	const pgidOff = 16 + 4 + 4 + 4 + 4 + 16 + 8 // page header, magic, version, page size, flags, root, freelist
	pageSize := int(binary.LittleEndian.Uint32(db[16+8:]))
	hwm := max(binary.LittleEndian.Uint64(db[pgidOff:]), binary.LittleEndian.Uint64(db[pageSize+pgidOff:]))
	end := int(hwm) * pageSize
	if pageSize != 4096 || end <= 2*pageSize || end > len(db) {
		t.Fatalf("page size %d, pages end at %d of %d bytes: not a bbolt file this test knows", pageSize, end, len(db))
	}
	return end
}
