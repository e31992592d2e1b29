package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/loa-broadcast/loa/protocol"
)

// Key files: <name>.key holds the standard base64 of the 64-byte ed25519
// private key and a newline (mode 0600); <name>.pub the base64 of the
// 32-byte public key. The operator keeps the .key offline; controllers
// and receivers get the .pub.

const firmwareUsage = `usage: loa firmware <command> [flags]

commands:
  keygen -out dir/name              write a signing key pair: name.key (secret, 0600) and name.pub
  sign -key name.key -version V [-w] image
                                    print the image's manifest {version,size,sha256,sig};
                                    -w also writes the signature to image.sig
`

func runFirmware(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, firmwareUsage)
		return errors.New("firmware: no command given")
	}
	switch args[0] {
	case "keygen":
		return firmwareKeygen(args[1:], stdout, stderr)
	case "sign":
		return firmwareSign(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, firmwareUsage)
		return nil
	}
	fmt.Fprint(stderr, firmwareUsage)
	return fmt.Errorf("firmware: unknown command %q", args[0])
}

func firmwareKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa firmware keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "path and base name of the key pair: writes <out>.key and <out>.pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("firmware keygen: -out dir/name is required, and nothing else")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("firmware keygen: %w", err)
	}
	keyPath, pubPath := *out+".key", *out+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("firmware keygen: %s exists; refusing to overwrite a key (images signed with it would no longer match)", p)
		}
	}
	if dir := filepath.Dir(*out); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("firmware keygen: %w", err)
		}
	}
	if err := writeNew(keyPath, protocol.EncodeFirmwarePrivateKey(priv), 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, protocol.EncodeFirmwarePublicKey(pub), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	fmt.Fprintf(stdout, "secret key: %s (keep it offline; it signs firmware)\npublic key: %s (give it to loa serve -firmware-key and to receivers)\n", keyPath, pubPath)
	return nil
}

// writeNew creates path with mode, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("firmware: %w", err)
	}
	return f.Close()
}

// firmwareManifest is what "loa firmware sign" prints: the fields of the
// upload form and of the receivers' firmware command.
type firmwareManifest struct {
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Sig     string `json:"sig"`
}

func firmwareSign(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa firmware sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "the secret key file (name.key from loa firmware keygen)")
	version := fs.String("version", "", "the image's version, dotted numeric, e.g. 1.4.2")
	write := fs.Bool("w", false, "also write the signature to <image>.sig")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" || *version == "" || fs.NArg() != 1 {
		return errors.New("firmware sign: want -key name.key -version V and one image file")
	}
	if _, err := protocol.ParseFWVersion(*version); err != nil {
		return fmt.Errorf("firmware sign: -version: %w", err)
	}
	key, err := protocol.ReadFirmwarePrivateKey(*keyPath)
	if err != nil {
		return err
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("firmware sign: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("firmware sign: reading %s: %w", path, err)
	}
	if n == 0 || n > protocol.MaxFirmwareSize {
		return fmt.Errorf("firmware sign: %s is %d bytes; an image is 1 byte to %d MiB", path, n, protocol.MaxFirmwareSize>>20)
	}
	m := firmwareManifest{Version: *version, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	m.Sig = protocol.SignFirmware(key, m.Version, m.SHA256)
	if *write {
		if err := os.WriteFile(path+".sig", []byte(m.Sig+"\n"), 0o644); err != nil {
			return fmt.Errorf("firmware sign: %w", err)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}
