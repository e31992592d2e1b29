package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/loa-broadcast/loa/protocol"
)

// openStationKey reads the station key from the data dir, making it on
// the first start. It signs stored alert messages and SMS triggers, so
// it must survive restarts (and is in backups): a new key would make
// every receiver refuse them.
func (m *Main) openStationKey() error {
	keyPath := filepath.Join(m.Config.DataDir, protocol.StationKeyFile)
	pubPath := filepath.Join(m.Config.DataDir, protocol.StationPubFile)
	key, err := protocol.ReadFirmwarePrivateKey(keyPath)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		_, key, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("station key: %w", err)
		}
		// The private half first: a public file with no key behind it
		// would be handed to installers.
		if err := writeFileSync(keyPath, protocol.EncodeFirmwarePrivateKey(key), 0o600); err != nil {
			return fmt.Errorf("station key: %w", err)
		}
		m.Logger.Info("created the station key; receivers verify stored alerts and SMS with its public half", "file", pubPath)
	default:
		return fmt.Errorf("station key %s: %w", keyPath, err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := writeFileSync(pubPath, protocol.EncodeFirmwarePublicKey(pub), 0o644); err != nil {
		return fmt.Errorf("station key: %w", err)
	}
	m.StationKey = key
	return nil
}

// writeFileSync writes a small file atomically: temp file, fsync, rename.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
