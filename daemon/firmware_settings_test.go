package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A controller refuses to start with a firmware setting it cannot use
// rather than run without checking uploads.
func TestOpenRefusesBadFirmwareSettings(t *testing.T) {
	write := func(name, content string) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	// serve refuses to start with a bad -firmware-key rather than run
	// without checking uploads.
	cfg := testConfig(t)
	cfg.FirmwareKey = write("bad.pub", "xyz")
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "firmware key") {
		t.Errorf("open with a bad -firmware-key: %v", err)
	}
	m.Close()
	cfg = testConfig(t)
	cfg.FirmwareURL = "ftp://ctl"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "firmware-url") {
		t.Errorf("validate firmware-url ftp://: %v", err)
	}
}
