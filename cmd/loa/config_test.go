package main

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/daemon"
)

// "loa serve" with a plain listener beyond loopback stops at once with an
// error that names the listener and the way out.
func TestServeRefusesPlainBeyondLoopback(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"serve", "-data", data, "-http", ":8080"},
		{"serve", "-data", data, "-mqtt-listen", "0.0.0.0:1883"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, &stderr, &stderr, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "beyond loopback") || !strings.Contains(err.Error(), "-allow-plain") {
			t.Errorf("%q: %v, want a refusal naming -allow-plain", args, err)
		}
	}
}

func TestTLSConfigFromEnvAndFlags(t *testing.T) {
	cfg := daemon.DefaultConfig()
	env := map[string]string{"LOA_ALLOW_PLAIN": "true", "LOA_TLS_NAMES": "loa.example.vn, 10.0.0.5", "LOA_HTTPS": ":443",
		"LOA_ACME_DOMAIN": "loa.example.vn"}
	if err := configFromEnv(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.AllowPlain || !slices.Equal(cfg.TLS.Names, []string{"loa.example.vn", "10.0.0.5"}) ||
		cfg.TLS.HTTPSAddr != ":443" || cfg.TLS.ACMEDomain != "loa.example.vn" {
		t.Errorf("from the environment: %+v", cfg.TLS)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	bindConfig(&cfg, fs)
	if err := fs.Parse([]string{"-allow-plain=false", "-tls-names", "ctl", "-mqtt-tls-listen", ""}); err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.AllowPlain || !slices.Equal(cfg.TLS.Names, []string{"ctl"}) || cfg.TLS.MQTTListen != "" {
		t.Errorf("flags over the environment: %+v", cfg.TLS)
	}
	if err := configFromEnv(&cfg, func(k string) string { return map[string]string{"LOA_ALLOW_PLAIN": "maybe"}[k] }); err == nil {
		t.Error("LOA_ALLOW_PLAIN=maybe accepted")
	}
}

// "loa serve" with a tile URL the console's CSP cannot name stops at once,
// saying what a good one looks like.
func TestServeRefusesABadTileURL(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var stderr bytes.Buffer
	args := []string{"serve", "-data", data, "-map-tiles", "https://tiles.example.vn/{z}/{x}.png"}
	err := run(context.Background(), args, &stderr, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "map-tiles") || !strings.Contains(err.Error(), "{y}") {
		t.Errorf("%q: %v, want a refusal naming -map-tiles", args, err)
	}
	cfg := daemon.DefaultConfig()
	env := map[string]string{"LOA_MAP_TILES": "https://tile.openstreetmap.org/{z}/{x}/{y}.png"}
	if err := configFromEnv(&cfg, func(k string) string { return env[k] }); err != nil || cfg.MapTiles != env["LOA_MAP_TILES"] || cfg.Validate() != nil {
		t.Errorf("LOA_MAP_TILES: %q, %v, %v", cfg.MapTiles, err, cfg.Validate())
	}
}

// The node id comes from LOA_NODE_ID or -node-id (the flag wins), and one
// that cannot be part of an MQTT client id is refused.
func TestNodeIDFromEnvAndFlags(t *testing.T) {
	cfg := daemon.DefaultConfig()
	if cfg.NodeID == "" {
		t.Fatal("no default node id")
	}
	if err := configFromEnv(&cfg, func(k string) string { return map[string]string{"LOA_NODE_ID": "ctl-a"}[k] }); err != nil || cfg.NodeID != "ctl-a" {
		t.Fatalf("LOA_NODE_ID: %q, %v", cfg.NodeID, err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	bindConfig(&cfg, fs)
	if err := fs.Parse([]string{"-node-id", "ctl-b"}); err != nil || cfg.NodeID != "ctl-b" {
		t.Fatalf("-node-id: %q, %v", cfg.NodeID, err)
	}
	for _, bad := range []string{"a/b", "node 1", "đài", strings.Repeat("n", 65)} {
		cfg.NodeID = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "node-id") {
			t.Errorf("node id %q: %v, want a refusal naming node-id", bad, err)
		}
	}
}
