package loa_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules keeps ARCHITECTURE.md's picture true: the domain and
// protocol are leaves, adapters do not import each other, and the receiver
// simulator sees only the wire contract.
func TestDependencyRules(t *testing.T) {
	const mod = "github.com/loa-broadcast/loa"
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	adapters := []string{"store", "broadcast", "scheduler", "devices", "broker", "api"}
	top := func(pkg string) string { // "broadcast/media" -> "broadcast"
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		first, _, _ := strings.Cut(rel, "/")
		return first
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		var internal []string
		for _, d := range strings.Fields(deps) {
			if d == mod || strings.HasPrefix(d, mod+"/") {
				internal = append(internal, d)
			}
		}
		self := top(pkg)
		switch {
		case pkg == mod || self == "protocol":
			if len(internal) > 0 {
				t.Errorf("%s is a leaf but depends on %v", pkg, internal)
			}
		case self == "cap":
			// A codec between CAP XML and the domain: the API uses it, so
			// it may lean on nothing but the domain types.
			for _, d := range internal {
				if d != mod {
					t.Errorf("%s may import only the loa root, but depends on %s", pkg, d)
				}
			}
		case self == "station":
			// The application services: they compose the adapters through
			// interfaces of their own, never the engine, fleet, broker or API.
			for _, d := range internal {
				if d != mod && !contains([]string{"store", "media", "scheduler", "cap", "protocol"}, top(d)) {
					t.Errorf("%s may import only the root, store, media, scheduler, cap and protocol, but depends on %s", pkg, d)
				}
			}
		case self == "firmware-sim":
			for _, d := range internal {
				if d != mod+"/protocol" {
					t.Errorf("%s may import only protocol, but depends on %s", pkg, d)
				}
			}
		default:
			for _, a := range adapters {
				if self != a {
					continue
				}
				for _, d := range internal {
					if other := top(d); other != a && (contains(adapters, other) || other == "station") {
						t.Errorf("adapter %s depends on adapter %s (%s): declare an interface, wire in cmd/loa", pkg, other, d)
					}
				}
			}
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("go list returned only %d packages", checked)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
