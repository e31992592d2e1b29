package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
)

// Firmware signing keys are files holding the standard base64 of the raw
// ed25519 key and a newline: name.pub (32 bytes) for the controller and the
// receivers, name.key (64 bytes: seed and public half) kept offline by the
// operator. Surrounding white space is ignored.

// EncodeFirmwarePublicKey returns the contents of a .pub file for pub.
func EncodeFirmwarePublicKey(pub ed25519.PublicKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(pub) + "\n")
}

// EncodeFirmwarePrivateKey returns the contents of a .key file for key.
func EncodeFirmwarePrivateKey(key ed25519.PrivateKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// ParseFirmwarePublicKey parses the contents of a .pub file.
func ParseFirmwarePublicKey(b []byte) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, errors.New("not standard base64 (is this the .pub from loa firmware keygen?)")
	}
	if len(raw) != ed25519.PublicKeySize {
		if len(raw) == ed25519.PrivateKeySize {
			return nil, errors.New("this is a secret key (.key); only the .pub is needed here")
		}
		return nil, fmt.Errorf("%d bytes, want a %d-byte ed25519 public key", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// ParseFirmwarePrivateKey parses the contents of a .key file. The key's
// second half is its public key; a file where it does not match the seed
// is damaged.
func ParseFirmwarePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, errors.New("not standard base64 (is this the .key from loa firmware keygen?)")
	}
	if len(raw) != ed25519.PrivateKeySize {
		if len(raw) == ed25519.PublicKeySize {
			return nil, errors.New("this is a public key (.pub); signing needs the secret .key")
		}
		return nil, fmt.Errorf("%d bytes, want a %d-byte ed25519 private key", len(raw), ed25519.PrivateKeySize)
	}
	k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !bytes.Equal(k, raw) {
		return nil, errors.New("damaged: its public half does not match its seed")
	}
	return k, nil
}

// ReadFirmwarePublicKey reads a .pub file.
func ReadFirmwarePublicKey(path string) (ed25519.PublicKey, error) {
	return readKey(path, ParseFirmwarePublicKey)
}

// ReadFirmwarePrivateKey reads a .key file.
func ReadFirmwarePrivateKey(path string) (ed25519.PrivateKey, error) {
	return readKey(path, ParseFirmwarePrivateKey)
}

func readKey[K any](path string, parse func([]byte) (K, error)) (K, error) {
	var zero K
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("firmware key: %w", err)
	}
	k, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("firmware key %s: %w", path, err)
	}
	return k, nil
}
