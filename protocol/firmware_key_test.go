package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFirmwarePublicKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := ReadFirmwarePublicKey(write("ok.pub", string(EncodeFirmwarePublicKey(pub))))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("read %x, %v; want %x", got, err, pub)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pub"), "no such file"},
		{write("hex.pub", "zz not base64\n"), "not standard base64"},
		{write("short.pub", base64.StdEncoding.EncodeToString(pub[:16])+"\n"), "16 bytes"},
	} {
		if _, err := ReadFirmwarePublicKey(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.path, err, c.want)
		}
	}
}

func FuzzParseFirmwarePublicKey(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(EncodeFirmwarePublicKey(pub))
	f.Add([]byte("\n"))
	f.Add([]byte("AAAA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseFirmwarePublicKey(b)
		if err != nil {
			return
		}
		if len(k) != ed25519.PublicKeySize {
			t.Fatalf("%d-byte key accepted", len(k))
		}
		if k2, err := ParseFirmwarePublicKey(EncodeFirmwarePublicKey(k)); err != nil || !k2.Equal(k) {
			t.Fatalf("key does not round-trip: %v", err)
		}
	})
}

// Key files come from outside (the operator's disk): any bytes either
// parse to a key of the right size or fail with an error.
func FuzzParseKeyFiles(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(pub) + "\n", base64.StdEncoding.EncodeToString(priv) + "\n",
		"", "\n", "====", "not base64", base64.StdEncoding.EncodeToString(make([]byte, 64)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParseFirmwarePublicKey(b); err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatalf("public key of %d bytes accepted", len(k))
		}
		if k, err := ParseFirmwarePrivateKey(b); err == nil {
			if len(k) != ed25519.PrivateKeySize || !bytes.Equal(k, ed25519.NewKeyFromSeed(k.Seed())) {
				t.Fatal("an inconsistent private key was accepted")
			}
		}
	})
}
