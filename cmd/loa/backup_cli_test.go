package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/daemon"
)

// loa backup against a running controller, then loa restore: the archive
// carries the firmware key, the CA and the admin token, and the restored
// dir is refused a second time; a bad token or a cut archive leaves no file.
func TestBackupAndRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"firmware", "keygen", "-out", filepath.Join(dir, "op")}, &out, &out, os.Getenv); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "", ""
	cfg.FirmwareKey = filepath.Join(dir, "op.pub")
	m := daemon.NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	archive := filepath.Join(dir, "station.tar.gz")
	bad := filepath.Join(dir, "bad-token")
	os.WriteFile(bad, []byte("nope\n"), 0o600)
	if err := run(t.Context(), []string{"backup", "-url", m.URL(), "-token-file", bad, "-o", archive}, &out, &out, os.Getenv); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("backup with a bad token: %v", err)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Fatal("a refused backup left a file")
	}
	out.Reset()
	if err := run(t.Context(), []string{"backup", "-url", m.URL(), "-token-file", m.AdminTokenFile, "-o", archive}, &out, &out, os.Getenv); err != nil {
		t.Fatalf("backup: %v: %s", err, out.String())
	}

	restored := filepath.Join(dir, "restored")
	out.Reset()
	if err := run(t.Context(), []string{"restore", "-data", restored, archive}, &out, &out, os.Getenv); err != nil {
		t.Fatalf("restore: %v: %s", err, out.String())
	}
	if !strings.Contains(out.String(), "loa serve -data "+restored) || !strings.Contains(out.String(), "-firmware-key") {
		t.Errorf("restore says %q", out.String())
	}
	for _, f := range []string{"loa.db", "firmware.pub", "tls/ca.crt", "tls/ca.key", "admin-token"} {
		if _, err := os.Stat(filepath.Join(restored, f)); err != nil {
			t.Errorf("restored dir lacks %s", f)
		}
	}
	if pub, _ := os.ReadFile(filepath.Join(restored, "firmware.pub")); !bytes.Equal(pub, must(os.ReadFile(cfg.FirmwareKey))) {
		t.Error("restored firmware.pub differs from the key")
	}
	if err := run(t.Context(), []string{"restore", "-data", restored, archive}, &out, &out, os.Getenv); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into the same dir again: %v", err)
	}

	b := must(os.ReadFile(archive))
	cut := filepath.Join(dir, "cut.tar.gz")
	os.WriteFile(cut, b[:len(b)/2], 0o600)
	other := filepath.Join(dir, "other")
	if err := run(t.Context(), []string{"restore", "-data", other, cut}, &out, &out, os.Getenv); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("restore of a cut archive: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatal("a refused restore left its directory")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
