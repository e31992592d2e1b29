package daemon

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/protocol"
)

// The station key is made once and kept: receivers hold its public half,
// so a restart must not change it, and a damaged file stops the start
// rather than quietly making a key every receiver would refuse.
func TestStationKeyKeptAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	m := &Main{Config: Config{DataDir: dir}, Logger: testLogger(t)}
	if err := m.openStationKey(); err != nil {
		t.Fatal(err)
	}
	first := m.StationKey
	if fi, err := os.Stat(filepath.Join(dir, protocol.StationKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("station.key: %v %v, want mode 0600", fi, err)
	}
	pub, err := protocol.ReadFirmwarePublicKey(filepath.Join(dir, protocol.StationPubFile))
	if err != nil || !pub.Equal(first.Public()) {
		t.Fatalf("station.pub %x (%v), want the key's public half", pub, err)
	}
	m2 := &Main{Config: Config{DataDir: dir}, Logger: testLogger(t)}
	if err := m2.openStationKey(); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(m2.StationKey) {
		t.Fatal("a restart made a new station key")
	}
	sig := ed25519.Sign(m2.StationKey, []byte("x"))
	if !ed25519.Verify(pub, []byte("x"), sig) {
		t.Fatal("the kept key does not sign for station.pub")
	}
	if err := os.WriteFile(filepath.Join(dir, protocol.StationKeyFile), []byte("damaged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m3 := &Main{Config: Config{DataDir: dir}, Logger: testLogger(t)}
	if err := m3.openStationKey(); err == nil || !strings.Contains(err.Error(), "station key") {
		t.Fatalf("a damaged station.key: %v, want an error naming it", err)
	}
}
