package loatest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The ACME test server: Let's Encrypt's pebble, built from its module.
const (
	pebbleModule  = "github.com/letsencrypt/pebble/v2"
	pebbleVersion = "v2.10.3"
)

// Pebble is a running pebble ACME server that validates every challenge
// without looking (PEBBLE_VA_ALWAYS_VALID).
type Pebble struct {
	Directory string // the ACME directory URL
	RootsFile string // PEM file of the root pebble's own HTTPS listeners present
	mgmt      string // management listener, host:port
	roots     *x509.CertPool
}

// StartPebble builds pebble (go install into a temp dir; the build cache
// makes later runs quick) and runs it on free loopback ports until the test
// ends. Without the go command or the module (offline), Tool's rule
// applies: skip outside CI, fail under it.
func StartPebble(tb testing.TB) *Pebble {
	tb.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		missing(tb, "the go command (to build pebble)")
	}
	bin := tb.TempDir()
	mod := exec.Command(goCmd, "mod", "download", "-json", pebbleModule+"@"+pebbleVersion)
	mod.Dir = bin
	out, err := mod.Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	if err != nil || info.Dir == "" {
		missing(tb, fmt.Sprintf("pebble %s (go mod download: %v %s)", pebbleVersion, err, info.Error))
	}
	install := exec.Command(goCmd, "install", pebbleModule+"/cmd/pebble@"+pebbleVersion)
	install.Dir, install.Env = bin, append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		missing(tb, fmt.Sprintf("pebble %s (go install: %v: %s)", pebbleVersion, err, out))
	}

	certs := filepath.Join(info.Dir, "test", "certs")
	p := &Pebble{RootsFile: filepath.Join(certs, "pebble.minica.pem")}
	listen, mgmt := fmt.Sprintf("127.0.0.1:%d", FreePort(tb, "tcp")), fmt.Sprintf("127.0.0.1:%d", FreePort(tb, "tcp"))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(certs, "localhost", "cert.pem"), "privateKey": filepath.Join(certs, "localhost", "key.pem"),
		// Never dialled: validation always passes.
		"httpPort": FreePort(tb, "tcp"), "tlsPort": FreePort(tb, "tcp"),
		"externalAccountBindingRequired": false, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 7776000}},
	}}
	confFile := filepath.Join(bin, "pebble-config.json")
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	logFile := filepath.Join(bin, "pebble.log")
	logf, err := os.Create(logFile)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pebble"), "-config", confFile, "-strict")
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		tb.Fatalf("start pebble: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() { cancel(); <-exited; logf.Close() })

	rootPEM, err := os.ReadFile(p.RootsFile)
	if err != nil {
		tb.Fatal(err)
	}
	p.roots = x509.NewCertPool()
	p.roots.AppendCertsFromPEM(rootPEM)
	p.Directory, p.mgmt = "https://"+listen+"/dir", mgmt
	deadline := time.Now().Add(Wait)
	for {
		resp, err := p.client().Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("pebble exited (%v):\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("pebble did not answer on %s: %v\n%s", p.Directory, err, log)
		}
	}
}

func (p *Pebble) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: p.roots}}}
}

// IssuerRoot is the root of the certificates pebble issues (new at every
// start), from its management listener.
func (p *Pebble) IssuerRoot(tb testing.TB) *x509.CertPool {
	tb.Helper()
	resp, err := p.client().Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		tb.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("pebble root: %s %v", resp.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		tb.Fatalf("pebble root: no PEM in %q", b)
	}
	return pool
}
