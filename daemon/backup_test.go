package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/store"
)

// dbRecords reads every bucket of db.
func dbRecords(t *testing.T, db *store.DB) map[string]map[string]string {
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

// TestSystemBackupUnderLoadRestores takes a backup through the API with
// "loa backup"'s client while API clients keep creating areas, restores it
// into a new data dir, compares it record by record with the live
// database, and starts a controller from it that serves the same areas,
// devices and media, and plays that media to the receivers, which log in
// with their restored credentials.
func TestSystemBackupUnderLoadRestores(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	m1 := openMain(t, cfg)
	defer m1.Close()
	c := api.NewClient(m1.URL(), m1.AdminToken)
	for _, a := range []loa.Area{{ID: "p", Name: "P", Kind: loa.AreaProvince}, {ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune}} {
		if err := c.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	passwords := map[string]string{}
	for i := range 2 {
		id := fmt.Sprintf("rx-%d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: "a", Name: id})
		if err != nil {
			t.Fatal(err)
		}
		passwords[id] = pw
	}
	s1 := &system{t: t, m: m1, api: c}
	med := s1.upload(testSignal(3*time.Second), 48000)

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
				if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("w%d-%05d", w, n), ParentID: "a", Name: "x", Kind: loa.AreaCluster}); err != nil {
					errs <- err
					return
				}
				written.Add(1)
			}
		}()
	}
	loatest.Eventually(t, time.Minute, func() bool { return written.Load() >= 20 }, "API writers have written")
	file := filepath.Join(t.TempDir(), "station.tar.gz")
	tokenFile := filepath.Join(cfg.DataDir, "admin-token")
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FetchBackup(ctx, m1.URL(), string(token), "", file); err != nil {
		t.Fatal(err)
	}
	after := written.Load()
	loatest.Eventually(t, time.Minute, func() bool { return written.Load() >= after+20 }, "API writers go on after the backup")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	summary, err := Restore(ctx, file, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(summary)
	if _, err := Restore(ctx, file, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second restore into the same dir: %v, want refused as not empty", err)
	}
	for _, f := range []string{"tls/ca.crt", "tls/ca.key", "admin-token", "admin-password", "media/" + med.Hash + ".opus"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("restored data dir lacks %s: %v", f, err)
		}
	}

	// Record by record: everything restored is identical in the live
	// database (these buckets are only appended to here), and the
	// restored audit log is a prefix of the live one: one moment. An audit
	// record commits with its change in a provisional form and is completed
	// by the API a moment later, so a snapshot may hold either form: audit
	// records are compared by key.
	rdb, err := store.Open(filepath.Join(dir, "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	restored, live := dbRecords(t, rdb), dbRecords(t, m1.DB)
	rdb.Close()
	for _, b := range []string{"areas", "area_children", "devices", "device_creds", "media", "media_by_hash", "tokens", "tokens_by_hash", "audit"} {
		for k, v := range restored[b] {
			if lv, ok := live[b][k]; !ok || (lv != v && b != "audit") {
				t.Errorf("restored %s/%q = %s; live: %s (present %v)", b, k, v, lv, ok)
			}
		}
	}
	var la, ra []string
	for k := range live["audit"] {
		la = append(la, k)
	}
	for k := range restored["audit"] {
		ra = append(ra, k)
	}
	slices.Sort(la)
	slices.Sort(ra)
	if len(ra) >= len(la) || !slices.Equal(ra, la[:len(ra)]) {
		t.Fatalf("restored audit (%d records) is not a strict prefix of the live one (%d)", len(ra), len(la))
	}
	if len(restored["areas"]) <= 2+20 || len(restored["areas"]) >= len(live["areas"]) {
		t.Fatalf("restored %d areas, live %d: want the backup taken amid the writes", len(restored["areas"]), len(live["areas"]))
	}
	for w := range writers {
		for n := 0; ; n++ {
			if _, ok := restored["areas"][fmt.Sprintf("w%d-%05d", w, n)]; !ok {
				for m := n + 1; m < n+1000; m++ {
					if _, later := restored["areas"][fmt.Sprintf("w%d-%05d", w, m)]; later {
						t.Fatalf("writer %d: area %d restored without area %d", w, m, n)
					}
				}
				break
			}
		}
	}
	wantAreas := listIDs(t, c, "/api/v1/areas")
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	// A controller from the restored dir: the old admin token, areas,
	// devices and media, and the media plays.
	cfg2 := testConfig(t)
	cfg2.DataDir = dir
	m2 := openMain(t, cfg2)
	defer m2.Close()
	if m2.AdminToken != "" {
		t.Fatal("the restored controller made a new admin token: the tokens were not restored")
	}
	c2 := api.NewClient(m2.URL(), strings.TrimSpace(string(token)))
	gotAreas := listIDs(t, c2, "/api/v1/areas")
	wantRestored := make([]string, 0, len(restored["areas"]))
	for k := range restored["areas"] {
		wantRestored = append(wantRestored, k)
	}
	slices.Sort(wantRestored)
	if !slices.Equal(gotAreas, wantRestored) || len(gotAreas) >= len(wantAreas) {
		t.Fatalf("restored controller serves %d areas, the backup holds %d (live had %d)", len(gotAreas), len(wantRestored), len(wantAreas))
	}
	if devs := listIDs(t, c2, "/api/v1/devices"); !slices.Equal(devs, []string{"rx-0", "rx-1"}) {
		t.Fatalf("restored devices %v", devs)
	}
	var gotMed loa.Media
	if err := c2.JSON(ctx, "GET", "/api/v1/media/"+med.ID, nil, &gotMed); err != nil || gotMed.Hash != med.Hash {
		t.Fatalf("restored media %+v, %v", gotMed, err)
	}
	var cfgs []firmwaresim.Config
	for id, pw := range passwords {
		cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: m2.MQTTURL(), Decode: true, KeepPCM: true, Logger: testLogger(t)})
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	if err := c2.WaitOnline(ctx, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	s2 := &system{t: t, m: m2, api: c2, byArea: map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}}
	sess := s2.play(med.ID, "a")
	if end := s2.finish(sess, med.Duration, "a"); end.State != loa.SessionEnded {
		t.Fatalf("session on the restored controller: %s (%s)", end.State, end.Reason)
	}
	for _, r := range fleet.Receivers() {
		if st, _ := r.Session(sess.ID); st.Played < uint64(med.Frames)*9/10 {
			t.Errorf("%s played %d of %d frames from the restored controller", r.ID(), st.Played, med.Frames)
		}
	}
}

// listIDs lists the ids a list route answers, sorted.
func listIDs(t *testing.T, c *api.Client, path string) []string {
	t.Helper()
	var raw []map[string]any
	if err := c.JSON(context.Background(), "GET", path, nil, &raw); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range raw {
		ids = append(ids, fmt.Sprint(v["id"]))
	}
	slices.Sort(ids)
	return ids
}

// TestScheduledBackups: -backup-dir gets a whole archive every period
// (never a temp file left), the newest -backup-keep kept.
func TestScheduledBackups(t *testing.T) {
	cfg := testConfig(t)
	cfg.BackupDir = filepath.Join(t.TempDir(), "backups")
	cfg.BackupEvery, cfg.BackupKeep = time.Second, 2
	m := openMain(t, cfg)
	defer m.Close()
	seen := map[string]bool{}
	loatest.Eventually(t, time.Minute, func() bool {
		entries, _ := os.ReadDir(cfg.BackupDir)
		var whole int
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), backupPrefix) {
				seen[e.Name()] = true
				whole++
			}
		}
		if whole > cfg.BackupKeep {
			t.Fatalf("%d backups kept, want at most %d", whole, cfg.BackupKeep)
		}
		return len(seen) >= 3
	}, "three scheduled backups")

	// A backup that cannot be written raises backup_failed (people are
	// told by the notification rules); the next one written clears it.
	active := func() bool {
		for _, al := range m.Alarms.Active() {
			if al.Kind == loa.AlarmBackupFailed {
				return true
			}
		}
		return false
	}
	if active() {
		t.Fatal("backup_failed raised while backups are written")
	}
	aside := cfg.BackupDir + ".aside"
	if err := os.Rename(cfg.BackupDir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.BackupDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, time.Minute, active, "backup_failed raised when the backup dir is a file")
	if err := os.Remove(cfg.BackupDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, cfg.BackupDir); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, time.Minute, func() bool { return !active() }, "backup_failed cleared by the next backup")

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := listBackups(cfg.BackupDir)
	if err != nil || len(names) != cfg.BackupKeep {
		t.Fatalf("backups left %v, %v; want %d", names, err, cfg.BackupKeep)
	}
	entries, _ := os.ReadDir(cfg.BackupDir)
	if len(entries) != len(names) {
		t.Fatalf("backup dir holds %d entries, %d of them backups: temp files left", len(entries), len(names))
	}
	b, err := os.ReadFile(filepath.Join(cfg.BackupDir, names[len(names)-1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.VerifyArchive(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}
