package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The controller binary, built once for the tests that run it as a real
// process (kill and restart tests): one build, not one per test.
var loaBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if loaBinary.dir != "" {
		os.RemoveAll(loaBinary.dir)
	}
	os.Exit(code)
}

// buildLoa returns the path of the loa binary built from ../cmd/loa.
func buildLoa(t *testing.T) string {
	t.Helper()
	b := &loaBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "loa-test-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "loa")
		b.out, b.err = exec.Command("go", "build", "-o", b.path, "../cmd/loa").CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build: %v\n%s", b.err, b.out)
	}
	return b.path
}
