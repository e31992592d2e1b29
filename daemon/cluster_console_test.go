package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest/browser"
	"github.com/loa-broadcast/loa/store"
)

// checkFollowerConsole: a follower answers reads from its own store
// (its /me says so and names the leader), proxies changes to the leader
// and answers only once it has applied them (a read right after a change
// sees it), lets a person sign in through it (the leader's cookie and
// CSRF token work across the proxy), and its console shows the banner.
func checkFollowerConsole(t *testing.T, follower, lead *clusterProc, token string) {
	t.Helper()
	ctx := context.Background()
	c := api.NewClient("http://"+follower.http, token)
	var me struct {
		Station struct {
			Cluster *api.ClusterRole `json:"cluster"`
		} `json:"station"`
	}
	if err := c.JSON(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	want := api.ClusterRole{Node: follower.id, Role: "follower", Leader: lead.id, LeaderAPI: "http://" + lead.http}
	if me.Station.Cluster == nil || *me.Station.Cluster != want {
		t.Errorf("the follower's /me says cluster %+v, want %+v (answered by the follower itself)", me.Station.Cluster, want)
	}

	// A change through the follower, then at once a read from it.
	for i := range 5 {
		id := fmt.Sprintf("f%d", i)
		if err := c.CreateArea(ctx, loa.Area{ID: id, Name: "Qua máy dự phòng " + id, Kind: loa.AreaProvince}); err != nil {
			t.Fatalf("creating an area through the follower: %v", err)
		}
		var a loa.Area
		if err := c.JSON(ctx, "GET", "/api/v1/areas/"+id, nil, &a); err != nil || a.Name != "Qua máy dự phòng "+id {
			t.Fatalf("the follower's read right after the change: %+v, %v; want the area just made", a, err)
		}
	}
	// The store refuses a follower's own writes: nothing was made here.
	var areas []loa.Area
	if err := api.NewClient("http://"+lead.http, token).JSON(ctx, "GET", "/api/v1/areas", nil, &areas); err != nil || len(areas) < 5 {
		t.Errorf("the leader lists %d areas (%v), want the 5 made through the follower", len(areas), err)
	}

	// A person signs in through the follower and changes something with
	// the session's cookie and CSRF token.
	pw, err := os.ReadFile(filepath.Join(lead.data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := "http://" + follower.http
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": strings.TrimSpace(string(pw))})
	res, err := hc.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ CSRF string }
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || login.CSRF == "" {
		t.Fatalf("sign-in through the follower: HTTP %d, csrf %q", res.StatusCode, login.CSRF)
	}
	res, err = hc.Get(base + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("the follower's /me with the session made through it: HTTP %d, want 200", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/areas", strings.NewReader(`{"id":"fc","name":"Bằng phiên đăng nhập","kind":"province"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.CSRFHeader, login.CSRF)
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("a change with the session's cookie and CSRF token through the follower: HTTP %d, want 201", res.StatusCode)
	}

	// The console in a real browser: signed in on the follower, the
	// banner names the leader, and the live event stream (served by the
	// follower from its store) is on.
	bctx := browser.Start(t, 1200, 800)
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	err = chromedp.Do(bctx,
		chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("login-user"), "admin"),
		chromedp.SendKeys(chromedp.ID("login-pass"), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("cluster")),
	)
	if err == nil {
		_, err = chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector("#live").className === "on"`))
	}
	if err != nil {
		t.Fatalf("the follower's console: %v", err)
	}
	banner, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID("cluster")))
	if err != nil {
		t.Fatal(err)
	}
	if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(90)); err == nil {
		if err := os.WriteFile(filepath.Join(artefactDir(t), "follower-console.png"), shot, 0o644); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(banner, lead.id) || !strings.Contains(banner, follower.id) {
		t.Errorf("the follower's banner says %q: want it to name this node %s and the leader %s", banner, follower.id, lead.id)
	}
}

// TestForwardedClientCert: a follower passes a national controller's
// client certificate on to the leader, which takes it only when the
// cluster secret vouches for it; a client's own such headers count for
// nothing.
func TestForwardedClientCert(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.EnsureClusterSecret(context.Background(), "cluster-secret"); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "canhbao.gov.vn"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)

	n := &Node{DB: db}
	var seen *tls.ConnectionState
	var leaked bool
	leader := n.acceptForwardedCert(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.TLS
		leaked = r.Header.Get(forwardedCertHeader) != "" || r.Header.Get(clusterAuthHeader) != ""
	}))
	send := func(out *http.Request) {
		seen, leaked = nil, false
		leader.ServeHTTP(httptest.NewRecorder(), out)
		if leaked {
			t.Error("the leader's handler sees the forwarding headers")
		}
	}

	// Through a follower, from a client with a certificate.
	in := httptest.NewRequest("POST", "/api/v1/alerts/cap", nil)
	in.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	out := httptest.NewRequest("POST", "/api/v1/alerts/cap", nil)
	forwardClientCert(out, in, "cluster-secret")
	send(out)
	if seen == nil || len(seen.PeerCertificates) != 1 || !bytes.Equal(seen.PeerCertificates[0].Raw, der) {
		t.Errorf("the leader sees %+v, want the client's certificate forwarded by the follower", seen)
	}

	// A client that sends the headers itself, through a follower: dropped.
	in = httptest.NewRequest("POST", "/api/v1/alerts/cap", nil)
	out = httptest.NewRequest("POST", "/api/v1/alerts/cap", nil)
	out.Header.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(der))
	out.Header.Set(clusterAuthHeader, "guess")
	forwardClientCert(out, in, "cluster-secret")
	if out.Header.Get(forwardedCertHeader) != "" || out.Header.Get(clusterAuthHeader) != "" {
		t.Error("the follower passes on forwarding headers a client sent")
	}
	// Straight to the leader with a wrong secret: ignored.
	out.Header.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(der))
	out.Header.Set(clusterAuthHeader, "guess")
	send(out)
	if seen != nil {
		t.Errorf("a forwarded certificate without the cluster secret was taken: %+v", seen)
	}
}
