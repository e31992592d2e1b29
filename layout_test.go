package loa_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listedPackage is what the layout checks read from `go list -json`.
type listedPackage struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	CgoFiles     []string
	Imports      []string // of the non-test files
	Deps         []string // everything the non-test build pulls in
	TestImports  []string
	XTestImports []string
}

// listPackages runs `go list -json` over the module.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 3 {
		t.Fatalf("go list returned only %d packages", len(pkgs))
	}
	return pkgs
}

const mod = "github.com/loa-broadcast/loa"

// top names a module package by its first path element, "" for the root:
// "cmd/loa" -> "cmd", "station/x" -> "station".
func top(pkg string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
	first, _, _ := strings.Cut(rel, "/")
	return first
}

// internal keeps the module's own packages of list.
func internal(list []string) []string {
	var out []string
	for _, d := range list {
		if d == mod || strings.HasPrefix(d, mod+"/") {
			out = append(out, d)
		}
	}
	return out
}

// TestDependencyRules keeps ARCHITECTURE.md's picture true: the domain and
// protocol are leaves, adapters do not import each other, the application
// services see adapters only through their own interfaces, the receiver
// simulator sees only the wire contract, and the test kit stays in tests.
// Only what the non-test build pulls in counts: tests may reach further.
func TestDependencyRules(t *testing.T) {
	adapters := []string{"store", "media", "broadcast", "scheduler", "devices", "broker", "api", "pki", "live"}
	// station composes the other adapters through interfaces it declares.
	stationMay := []string{"", "station", "store", "media", "scheduler", "cap", "protocol"}
	usedByTests := false
	for _, p := range listPackages(t) {
		pkg, self, deps := p.ImportPath, top(p.ImportPath), internal(p.Deps)
		switch {
		case pkg == mod || self == "protocol":
			if len(deps) > 0 {
				t.Errorf("%s is a leaf but depends on %v", pkg, deps)
			}
		case self == "cap":
			// A codec between CAP XML and the domain: the API uses it, so
			// it may lean on nothing but the domain types.
			for _, d := range deps {
				if d != mod {
					t.Errorf("%s may import only the loa root, but depends on %s", pkg, d)
				}
			}
		case self == "reportdoc":
			// Renders the root's report types as documents: a leaf beside cap.
			for _, d := range deps {
				if d != mod {
					t.Errorf("%s may import only the loa root, but depends on %s", pkg, d)
				}
			}
		case self == "cluster":
			// The store's replicator: it sees the store and the root only.
			for _, d := range deps {
				if d != mod && top(d) != "store" {
					t.Errorf("%s may import only the loa root and store, but depends on %s", pkg, d)
				}
			}
		case self == "firmware-sim":
			for _, d := range deps {
				if d != mod+"/protocol" {
					t.Errorf("%s may import only protocol, but depends on %s", pkg, d)
				}
			}
		case self == "station":
			for _, d := range deps {
				if !slices.Contains(stationMay, top(d)) {
					t.Errorf("%s may import only the root, store, media, scheduler, cap and protocol, but depends on %s: declare an interface, wire in daemon", pkg, d)
				}
			}
		case self == "loatest":
			// daemon's own tests use the kit: depending on daemon (or on
			// what imports it) would be an import cycle.
			for _, d := range deps {
				if other := top(d); other == "daemon" || other == "bench" || other == "cmd" {
					t.Errorf("the test kit %s depends on %s", pkg, d)
				}
			}
		case slices.Contains(adapters, self):
			for _, d := range deps {
				if other := top(d); other != self && (slices.Contains(adapters, other) || other == "station") {
					t.Errorf("adapter %s depends on adapter %s (%s): declare an interface, wire in daemon", pkg, other, d)
				}
			}
		}
		// daemon, bench and cmd/... are the wiring: they may import
		// anything but the test kit.
		if self != "loatest" && slices.ContainsFunc(deps, func(d string) bool { return top(d) == "loatest" }) {
			t.Errorf("%s pulls in the test kit: only _test.go files may import loatest", pkg)
		}
		if slices.Contains(p.TestImports, mod+"/loatest") || slices.Contains(p.XTestImports, mod+"/loatest") {
			usedByTests = true
		}
	}
	if !usedByTests {
		t.Error("no test imports loatest, so the check that only tests do proves nothing")
	}
}

// TestCmdLoaIsThin keeps cmd/loa to flags, config and commands: the
// services and their wiring live in daemon, where any test can start them.
func TestCmdLoaIsThin(t *testing.T) {
	const maxLines = 2500
	// What services are made of: cmd/loa reaches them through daemon.
	forbidden := []string{"store", "broadcast", "devices", "broker", "scheduler", "station"}
	found := false
	for _, p := range listPackages(t) {
		if p.ImportPath != mod+"/cmd/loa" {
			continue
		}
		found = true
		lines := 0
		for _, name := range slices.Concat(p.GoFiles, p.CgoFiles) {
			b, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			lines += bytes.Count(b, []byte("\n"))
		}
		if lines >= maxLines {
			t.Errorf("cmd/loa has %d lines of non-test code, want under %d: move behaviour to daemon or a package of its own", lines, maxLines)
		}
		for _, imp := range internal(slices.Concat(p.Imports, p.TestImports, p.XTestImports)) {
			if slices.Contains(forbidden, top(imp)) {
				t.Errorf("a file of cmd/loa imports %s: cmd/loa holds no service types; reach them through daemon", imp)
			}
		}
	}
	if !found {
		t.Fatal("go list does not list cmd/loa")
	}
}

// TestComposeFile validates docker-compose.yml with Debian's docker-compose,
// which parses and resolves it without a Docker engine.
func TestComposeFile(t *testing.T) {
	path, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-compose is not installed; `make test` installs it")
		}
		t.Skip("docker-compose is not installed (make test installs it); skipping the compose check")
	}
	for _, profile := range []string{"", "mosquitto"} {
		args := []string{"-f", "docker-compose.yml"}
		if profile != "" {
			args = append(args, "--profile", profile)
		}
		out, err := exec.Command(path, append(args, "config")...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose config (profile %q): %v\n%s", profile, err, out)
		}
		for _, want := range []string{"controller:", "receivers:", "firmware-sim"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("profile %q: resolved config lacks %q", profile, want)
			}
		}
		if profile == "mosquitto" && !strings.Contains(string(out), "eclipse-mosquitto") {
			t.Errorf("mosquitto profile does not start Mosquitto")
		}
	}
}

// TestArchitectureDocListsEveryPackage keeps docs/architecture.md's layout
// true: every package directory of the module is named in its layout
// block, and every directory the block names exists.
func TestArchitectureDocListsEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Layout")
	if !ok {
		t.Fatal(`docs/architecture.md has no "## Layout" section`)
	}
	_, block, ok := strings.Cut(rest, "```\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("docs/architecture.md's layout has no code block")
	}
	named := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		// An entry starts its line: "store/", "api/, web/", "cmd/loa".
		for _, f := range strings.Fields(strings.ReplaceAll(line, ",", " ")) {
			if !strings.HasSuffix(f, "/") && !strings.HasPrefix(f, "cmd/") {
				break
			}
			named[strings.TrimSuffix(f, "/")] = true
		}
	}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		if rel == "" {
			continue // the root is the block's first line
		}
		dir := rel
		if top(p.ImportPath) != "cmd" {
			dir = top(p.ImportPath)
		}
		if !named[dir] {
			t.Errorf("docs/architecture.md's layout does not name %s (package %s)", dir, p.ImportPath)
		}
	}
	for dir := range named {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist", dir)
		}
	}
}
