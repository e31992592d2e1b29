package station

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// signed returns image bytes and their signature for version.
func signed(t *testing.T, key ed25519.PrivateKey, version, body string) (io.Reader, string) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	return strings.NewReader(body), protocol.SignFirmware(key, version, hex.EncodeToString(sum[:]))
}

func newFirmware(t *testing.T, db *store.DB, pub ed25519.PublicKey, cfg FirmwareConfig) *FirmwareService {
	t.Helper()
	cfg.DB, cfg.Key, cfg.Logger = db, pub, quietLogger(t)
	return NewFirmwareService(cfg)
}

// firmwareFiles lists the names in the firmware dir.
func firmwareFiles(t *testing.T, db *store.DB) []string {
	t.Helper()
	dir, err := db.FirmwareDir()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFirmwareUploadAndDownload(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	db := tempStore(t)
	fw := newFirmware(t, db, pub, FirmwareConfig{})
	fw.Serving("http://127.0.0.1:8080")

	r, sig := signed(t, priv, "1.1.0", "image bytes")
	img, err := fw.UploadFirmware(ctx, "1.1.0", sig, "fw.bin", r, "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("image bytes"))
	if img.SHA256 != hex.EncodeToString(sum[:]) || img.ID != img.SHA256[:16] || img.Size != 11 || img.CreatedBy != "tok-1" {
		t.Errorf("uploaded %+v", img)
	}
	if files := firmwareFiles(t, db); len(files) != 1 || files[0] != filepath.Base(db.FirmwarePath(img.SHA256)) {
		t.Errorf("firmware dir holds %v, want only the image's content file", files)
	}
	got, f, err := fw.OpenFirmware(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if got.ID != img.ID || string(b) != "image bytes" {
		t.Errorf("downloaded %+v %q", got, b)
	}
	args, err := fw.FirmwareArgs(ctx, img.ID)
	want := protocol.FirmwareArgs{Version: "1.1.0", URL: "http://127.0.0.1:8080/fw/" + img.ID, Size: 11, SHA256: img.SHA256, Sig: sig}
	if err != nil || args != want {
		t.Errorf("args %+v %v, want %+v", args, err, want)
	}

	// The same signed image again is the same image; its bytes under
	// another version are a conflict.
	r, _ = signed(t, priv, "1.1.0", "image bytes")
	if again, err := fw.UploadFirmware(ctx, "1.1.0", sig, "fw.bin", r, "tok-2"); err != nil || again.ID != img.ID || again.CreatedBy != "tok-1" {
		t.Errorf("same image again: %+v %v", again, err)
	}
	r, sig2 := signed(t, priv, "1.2.0", "image bytes")
	if _, err := fw.UploadFirmware(ctx, "1.2.0", sig2, "fw.bin", r, ""); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("same bytes as another version: %v, want ECONFLICT", err)
	}
	if list, err := fw.FirmwareImages(ctx); err != nil || len(list) != 1 {
		t.Errorf("images %v %v, want one", list, err)
	}

	if err := os.Remove(db.FirmwarePath(img.SHA256)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fw.OpenFirmware(ctx, img.ID); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("image with its file gone: %v, want ENOTFOUND", err)
	}
}

// Every refused upload says why and leaves no file behind.
func TestFirmwareUploadRefused(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	db := tempStore(t)
	fw := newFirmware(t, db, pub, FirmwareConfig{})
	_, good := signed(t, priv, "1.0.0", "x")
	_, otherKey := signed(t, other, "1.0.0", "x")
	_, otherVersion := signed(t, priv, "2.0.0", "x")
	_, empty := signed(t, priv, "1.0.0", "")
	for name, c := range map[string]struct {
		version, sig, body, code string
	}{
		"bad version":    {"1.0.0-beta", good, "x", loa.EINVALID},
		"sig not base64": {"1.0.0", "not base64!", "x", loa.EINVALID},
		"sig of another": {"1.0.0", otherKey, "x", loa.EINVALID},
		"other version":  {"1.0.0", otherVersion, "x", loa.EINVALID},
		"tampered":       {"1.0.0", good, "y", loa.EINVALID},
		"empty":          {"1.0.0", empty, "", loa.EINVALID},
	} {
		if _, err := fw.UploadFirmware(ctx, c.version, c.sig, "", strings.NewReader(c.body), ""); loa.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", name, err, c.code)
		}
	}
	if files := firmwareFiles(t, db); len(files) != 0 {
		t.Errorf("refused uploads left %v", files)
	}

	nokey := newFirmware(t, db, nil, FirmwareConfig{})
	if _, err := nokey.UploadFirmware(ctx, "1.0.0", good, "", bytes.NewReader([]byte("x")), ""); loa.ErrorCode(err) != loa.EUNAVAILABLE {
		t.Errorf("without a key: %v, want EUNAVAILABLE", err)
	}
	if _, err := fw.FirmwareArgs(ctx, "ghost"); loa.ErrorCode(err) != loa.ENOTFOUND || !strings.HasPrefix(loa.ErrorMessage(err), "image_id:") {
		t.Errorf("args of an unknown image: %v", err)
	}
}

// A configured download base wins over the API's address.
func TestFirmwareDownloadBase(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	db := tempStore(t)
	fw := newFirmware(t, db, pub, FirmwareConfig{BaseURL: "https://cdn.example/loa/"})
	fw.Serving("http://127.0.0.1:8080")
	r, sig := signed(t, priv, "1.0.0", "z")
	img, err := fw.UploadFirmware(ctx, "1.0.0", sig, "", r, "")
	if err != nil {
		t.Fatal(err)
	}
	if args, _ := fw.FirmwareArgs(ctx, img.ID); args.URL != "https://cdn.example/loa/fw/"+img.ID {
		t.Errorf("download URL %q", args.URL)
	}
}
