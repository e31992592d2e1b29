package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Scheduled backups are named by their UTC time, so names sort by age.
const (
	backupPrefix     = "loa-backup-"
	backupSuffix     = ".tar.gz"
	backupTimeLayout = "20060102T150405Z"
	// DefaultBackupKeep is how many scheduled backups are kept.
	DefaultBackupKeep = 7
)

// WriteBackup writes a backup archive of the station to w (store.WriteBackup):
// the database, its blobs and the files the station needs besides them —
// the station CA and server certificate with their keys (restored into
// <data>/tls, where a start without -tls-ca-cert finds them), the
// firmware public key (as firmware.pub) and the admin token file.
func (m *Main) WriteBackup(ctx context.Context, w io.Writer) error {
	_, err := m.DB.WriteBackup(ctx, w, m.backupFiles())
	return err
}

func (m *Main) backupFiles() []store.ArchiveFile {
	tlsDir := filepath.Join(m.Config.DataDir, "tls")
	caCert, caKey := filepath.Join(tlsDir, pki.CACertFile), filepath.Join(tlsDir, pki.CAKeyFile)
	if m.Config.TLS.CACert != "" {
		caCert, caKey = m.Config.TLS.CACert, m.Config.TLS.CAKey
	}
	cands := []store.ArchiveFile{
		{Name: "tls/" + pki.CACertFile, Path: caCert},
		{Name: "tls/" + pki.CAKeyFile, Path: caKey},
		{Name: "tls/" + pki.ServerCertFile, Path: filepath.Join(tlsDir, pki.ServerCertFile)},
		{Name: "tls/" + pki.ServerKeyFile, Path: filepath.Join(tlsDir, pki.ServerKeyFile)},
		{Name: "admin-token", Path: filepath.Join(m.Config.DataDir, "admin-token")},
		{Name: "admin-password", Path: filepath.Join(m.Config.DataDir, "admin-password")},
		{Name: protocol.StationKeyFile, Path: filepath.Join(m.Config.DataDir, protocol.StationKeyFile)},
		{Name: protocol.StationPubFile, Path: filepath.Join(m.Config.DataDir, protocol.StationPubFile)},
	}
	if m.Config.FirmwareKey != "" {
		cands = append(cands, store.ArchiveFile{Name: "firmware.pub", Path: m.Config.FirmwareKey})
	}
	var out []store.ArchiveFile
	for _, f := range cands {
		if _, err := os.Stat(f.Path); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// runBackups writes a backup into Config.BackupDir every BackupEvery,
// counted from the newest one there, so restarts do not reset the period,
// and keeps the newest BackupKeep.
func (m *Main) runBackups(ctx context.Context) {
	dir, every := m.Config.BackupDir, m.Config.BackupEvery
	next := time.Now()
	if names, err := listBackups(dir); err == nil && len(names) > 0 {
		if t, err := time.Parse(backupTimeLayout, strings.TrimSuffix(strings.TrimPrefix(names[len(names)-1], backupPrefix), backupSuffix)); err == nil {
			next = t.Add(every)
		}
	}
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		path, err := m.BackupToDir(ctx)
		if err != nil {
			m.Logger.Error("scheduled backup failed", "dir", dir, "err", err)
		} else {
			m.Logger.Info("scheduled backup written", "file", path)
		}
		if m.Alarms != nil && ctx.Err() == nil {
			msg := "backup written: " + filepath.Base(path)
			if err != nil {
				msg = fmt.Sprintf("the scheduled backup into %s failed: %v", dir, err)
			}
			m.Alarms.Station(loa.AlarmBackupFailed, err != nil, loa.SeverityCritical, 0, 0, msg)
		}
		next = time.Now().Add(every)
	}
}

// BackupToDir writes one backup into Config.BackupDir atomically (a temp
// file renamed when whole and synced), then removes all but the newest
// BackupKeep. It returns the backup's path.
func (m *Main) BackupToDir(ctx context.Context) (string, error) {
	dir := m.Config.BackupDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup dir: %w", err)
	}
	name := backupPrefix + time.Now().UTC().Format(backupTimeLayout) + backupSuffix
	path := filepath.Join(dir, name)
	if err := writeAtomic(path, func(w io.Writer) error { return m.WriteBackup(ctx, w) }); err != nil {
		return "", err
	}
	keep := m.Config.BackupKeep
	if keep <= 0 {
		keep = DefaultBackupKeep
	}
	names, err := listBackups(dir)
	if err != nil {
		return path, err
	}
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return path, fmt.Errorf("prune old backups: %w", err)
		}
		names = names[1:]
	}
	return path, nil
}

// listBackups lists the scheduled backups in dir, oldest first.
func listBackups(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, backupPrefix) && strings.HasSuffix(n, backupSuffix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// writeAtomic writes path through a temp file beside it: path appears only
// whole and synced, never half-written.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil { // it holds the CA key
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FetchBackup downloads a backup from a running controller's API at
// baseURL into path: it is checked against its manifest before path
// appears, so a cut download never looks like a backup. caFile, if set,
// is the CA to verify an https URL with (the station CA).
func FetchBackup(ctx context.Context, baseURL, token, caFile, path string) (*store.Manifest, error) {
	client := &http.Client{}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/api/v1/backup", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("backup: %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	var man *store.Manifest
	err = writeAtomic(path, func(w io.Writer) error {
		if _, err := io.Copy(w, res.Body); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		f := w.(*os.File)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		man, err = store.VerifyArchive(f)
		return err
	})
	return man, err
}

// Restore writes the backup archive in file into dir, a new data dir, and
// checks every file, record and blob (store.Restore). It returns a summary.
func Restore(ctx context.Context, file, dir string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rep, err := store.Restore(ctx, f, dir)
	if err != nil {
		return "", err
	}
	total := 0
	for _, n := range rep.Records {
		total += n
	}
	return fmt.Sprintf("restored %s into %s: %d files, %d records, %d blobs checked (backup of %s, schema %d)",
		file, dir, len(rep.Manifest.Files), total, rep.Blobs, rep.Manifest.CreatedAt.Format(time.RFC3339), rep.Manifest.Schema), nil
}
