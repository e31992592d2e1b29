package daemon

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/media"
)

// TestREADMEWalkthrough runs the README's walkthrough, every block as
// written, with bash, curl and jq against a fresh controller: an example
// that stops working fails here, not for a newcomer.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (make test installs it)", tool)
			}
			t.Skipf("%s is not installed (make test installs it); skipping the README walkthrough", tool)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkthroughBlocks(string(readme))
	if len(blocks) < 5 {
		t.Fatalf("found %d shell blocks in the README's walkthrough, want at least 5", len(blocks))
	}

	cfg := testConfig(t)
	m := openMain(t, cfg)
	defer m.Close()
	work := t.TempDir()
	wav, _, err := media.DemoProgramme(context.Background(), 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "programme.wav"), wav, 0o644); err != nil {
		t.Fatal(err)
	}

	// The README speaks of a controller on 127.0.0.1:8080 with its data in
	// ~/.local/share/loa; this one has its own port and folder.
	script := strings.Join(blocks, "\n")
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", m.URL())
	script = strings.ReplaceAll(script, "~/.local/share/loa", cfg.DataDir)

	// Each command is echoed before it runs, so a failure names it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-x", "-c", script)
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README walkthrough failed: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(work, "openapi.yaml")); err != nil {
		t.Errorf("the walkthrough's last block wrote no openapi.yaml: %v", err)
	}
}

// walkthroughBlocks returns the ```sh blocks of the README's walkthrough
// section, in order.
func walkthroughBlocks(readme string) []string {
	_, section, ok := strings.Cut(readme, "### Walkthrough")
	if !ok {
		return nil
	}
	if end := strings.Index(section, "\n### "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			return blocks
		}
		blocks = append(blocks, block)
		section = after
	}
}
