package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/daemon"
)

// loa user add, then loa user passwd, against a running controller: the
// user signs in with each password in turn.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := daemon.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "", ""
	m := daemon.NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	login := func(user, pw string) int {
		b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
		res, err := http.Post(m.URL()+"/api/v1/login", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("mật khẩu thứ nhất\n"), 0o600)
	var out bytes.Buffer
	common := []string{"-url", m.URL(), "-token-file", m.AdminTokenFile, "-username", "lan", "-password-file", pwFile}
	if err := run(t.Context(), append([]string{"user", "add", "-role", "province"}, common...), &out, &out, os.Getenv); err != nil {
		t.Fatalf("user add: %v: %s", err, out.String())
	}
	if code := login("lan", "mật khẩu thứ nhất"); code != http.StatusOK {
		t.Fatalf("sign-in after add: %d", code)
	}
	os.WriteFile(pwFile, []byte("mật khẩu thứ hai\n"), 0o600)
	if err := run(t.Context(), append([]string{"user", "passwd"}, common...), &out, &out, os.Getenv); err != nil {
		t.Fatalf("user passwd: %v: %s", err, out.String())
	}
	if a, b := login("lan", "mật khẩu thứ nhất"), login("lan", "mật khẩu thứ hai"); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Errorf("after passwd: old %d, new %d", a, b)
	}
	os.WriteFile(pwFile, []byte("short\n"), 0o600)
	if err := run(t.Context(), append([]string{"user", "passwd"}, common...), &out, &out, os.Getenv); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("a short password: %v", err)
	}
	// The first start's admin signs in with the password of its file.
	pw, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-password"))
	if err != nil || login("admin", strings.TrimSpace(string(pw))) != http.StatusOK {
		t.Errorf("admin with <data>/admin-password: %v", err)
	}
}
