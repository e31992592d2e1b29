package daemon

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/api"
)

// The first admin signs in with the password the first start wrote to
// <data>/admin-password, over HTTPS (the cookie is Secure), and the
// sign-in session survives a restart, which writes no new password.
func TestSystemFirstAdminSignsIn(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLS.HTTPSAddr = "127.0.0.1:0"
	m := openMain(t, cfg)
	defer m.Close()
	file := filepath.Join(cfg.DataDir, "admin-password")
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", file, st, err)
	}
	pw, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(pw)) != m.AdminPassword || len(m.AdminPassword) < 20 {
		t.Fatalf("admin-password %q, %v", pw, err)
	}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: stationPool(t, m)}}}
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": strings.TrimSpace(string(pw))})
	res, err := c.Post(m.HTTPSURL()+"/api/v1/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookies := res.Cookies()
	if res.StatusCode != http.StatusOK || len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("sign-in over HTTPS: %d, cookies %v", res.StatusCode, res.Header["Set-Cookie"])
	}
	me := func(base string, c *http.Client) (int, string) {
		req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: cookies[0].Value})
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v struct{ User, Role string }
		_ = json.NewDecoder(res.Body).Decode(&v)
		return res.StatusCode, v.User + " " + v.Role
	}
	if code, who := me(m.HTTPSURL(), c); code != http.StatusOK || who != "admin admin" {
		t.Fatalf("me: %d %q", code, who)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := openMain(t, cfg)
	defer m2.Close()
	if m2.AdminPassword != "" {
		t.Error("a restart made a new admin password")
	}
	if again, _ := os.ReadFile(file); string(again) != string(pw) {
		t.Error("a restart rewrote admin-password")
	}
	if code, who := me(m2.URL(), http.DefaultClient); code != http.StatusOK || who != "admin admin" {
		t.Errorf("the session after a restart: %d %q", code, who)
	}
}
