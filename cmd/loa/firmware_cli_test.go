package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/protocol"
)

// keygen writes a key pair the receivers' format reads, and sign prints a
// manifest whose signature verifies with the public key.
func TestFirmwareKeygenAndSign(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "k", "op")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"firmware", "keygen", "-out", name}, &out, &out, os.Getenv); err != nil {
		t.Fatalf("keygen: %v: %s", err, out.String())
	}
	st, err := os.Stat(name + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v, mode %v; want 0600", err, st.Mode())
	}
	pubFile, _ := os.ReadFile(name + ".pub")
	if !bytes.HasSuffix(pubFile, []byte("\n")) {
		t.Errorf("public key file %q does not end in a newline", pubFile)
	}
	pub, err := protocol.ReadFirmwarePublicKey(name + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := protocol.ReadFirmwarePrivateKey(name + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("the .pub is not the .key's public key")
	}
	// A second keygen must not overwrite the key images are signed with.
	if err := run(t.Context(), []string{"firmware", "keygen", "-out", name}, &out, &out, os.Getenv); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("keygen over an existing key: %v, want a refusal", err)
	}

	image := bytes.Repeat([]byte{0xA5, 0x5A, 7}, 5000)
	img := filepath.Join(dir, "rx.img")
	os.WriteFile(img, image, 0o644)
	out.Reset()
	if err := run(t.Context(), []string{"firmware", "sign", "-key", name + ".key", "-version", "1.4.2", img}, &out, &out, os.Getenv); err != nil {
		t.Fatalf("sign: %v: %s", err, out.String())
	}
	var m firmwareManifest
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("sign printed %q: %v", out.String(), err)
	}
	sum := sha256.Sum256(image)
	if m.Version != "1.4.2" || m.Size != int64(len(image)) || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("manifest %+v", m)
	}
	if err := protocol.VerifyFirmware(pub, m.Version, m.SHA256, m.Sig); err != nil {
		t.Errorf("manifest signature: %v", err)
	}
	if _, err := os.Stat(img + ".sig"); !os.IsNotExist(err) {
		t.Errorf("sign without -w wrote %s.sig", img)
	}
	out.Reset()
	if err := run(t.Context(), []string{"firmware", "sign", "-key", name + ".key", "-version", "1.4.2", "-w", img}, &out, &out, os.Getenv); err != nil {
		t.Fatalf("sign -w: %v: %s", err, out.String())
	}
	if sig, err := os.ReadFile(img + ".sig"); err != nil || strings.TrimSpace(string(sig)) != m.Sig {
		t.Errorf("sign -w wrote %q (%v), want the manifest's sig", sig, err)
	}
}

func TestFirmwareCLIErrors(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	key := write("good.key", base64.StdEncoding.EncodeToString(priv)+"\n")
	img := write("rx.img", "image bytes")
	empty := write("empty.img", "")
	damaged := bytes.Clone(priv)
	damaged[40] ^= 1
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no command":        {[]string{"firmware"}, "no command"},
		"unknown command":   {[]string{"firmware", "burn"}, "unknown command"},
		"keygen without -o": {[]string{"firmware", "keygen"}, "-out"},
		"sign missing key":  {[]string{"firmware", "sign", "-key", filepath.Join(dir, "none.key"), "-version", "1", img}, "no such file"},
		"sign not base64":   {[]string{"firmware", "sign", "-key", write("b64.key", "not base64!\n"), "-version", "1", img}, "not standard base64"},
		"sign wrong size":   {[]string{"firmware", "sign", "-key", write("short.key", base64.StdEncoding.EncodeToString(priv[:40])), "-version", "1", img}, "40 bytes"},
		"sign with a .pub":  {[]string{"firmware", "sign", "-key", write("pub.key", base64.StdEncoding.EncodeToString(pub)), "-version", "1", img}, "public key"},
		"sign damaged key":  {[]string{"firmware", "sign", "-key", write("bad.key", base64.StdEncoding.EncodeToString(damaged)), "-version", "1", img}, "damaged"},
		"sign bad version":  {[]string{"firmware", "sign", "-key", key, "-version", "v1", img}, "-version"},
		"sign no image":     {[]string{"firmware", "sign", "-key", key, "-version", "1"}, "one image"},
		"sign empty image":  {[]string{"firmware", "sign", "-key", key, "-version", "1", empty}, "0 bytes"},
		"sign missing file": {[]string{"firmware", "sign", "-key", key, "-version", "1", filepath.Join(dir, "nope.img")}, "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), c.args, &out, &out, os.Getenv)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
			}
		})
	}
	// A controller given a secret key instead of the .pub says so.
	if _, err := protocol.ReadFirmwarePublicKey(key); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Errorf("reading a .key as the public key: %v", err)
	}
}
