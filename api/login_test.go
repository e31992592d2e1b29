package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/store"
)

const testPassword = "mật khẩu đủ dài"

// signedIn is a browser's sign-in: its session cookie and CSRF token.
type signedIn struct {
	cookie, csrf string
}

// addUser creates a user through the admin API.
func (e *env) addUser(username, role, area string) {
	e.t.Helper()
	want(e.t, e.do("POST", "/api/v1/users", e.admin, map[string]any{
		"username": username, "name": "Người " + username, "password": testPassword, "role": role, "area_id": area,
	}), http.StatusCreated)
}

// login signs in and returns the raw answer.
func (e *env) login(username, password string) response {
	e.t.Helper()
	return e.do("POST", "/api/v1/login", "", map[string]string{"username": username, "password": password})
}

// signIn signs in as username, which must succeed.
func (e *env) signIn(username string) signedIn {
	e.t.Helper()
	r := e.login(username, testPassword)
	want(e.t, r, http.StatusOK)
	var body struct{ CSRF string }
	r.json(e.t, &body)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == api.SessionCookie {
			return signedIn{cookie: c.Value, csrf: body.CSRF}
		}
	}
	e.t.Fatalf("no %s cookie in %v", api.SessionCookie, r.header)
	return signedIn{}
}

// as sends a request with the sign-in's cookie and, if csrf is true, its
// CSRF token.
func (e *env) as(s signedIn, csrf bool, method, path string, body any) response {
	e.t.Helper()
	req := e.request(method, path, body)
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: s.cookie})
	if csrf {
		req.Header.Set(api.CSRFHeader, s.csrf)
	}
	return e.send(req)
}

// request builds a request like do, without credentials.
func (e *env) request(method, path string, body any) *http.Request {
	e.t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	var req *http.Request
	var err error
	if rd == nil {
		req, err = http.NewRequest(method, e.srv.URL+path, nil)
	} else {
		req, err = http.NewRequest(method, e.srv.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return req
}

func TestLoginMeLogout(t *testing.T) {
	e := newEnv(t)
	e.addUser("lan", loa.RoleOperator, "xa-a")

	r := e.login("Lan ", testPassword) // usernames match case-insensitively
	want(t, r, http.StatusOK)
	var body map[string]any
	r.json(t, &body)
	if body["user"] != "lan" || body["role"] != "operator" || body["area"] != "xa-a" || body["csrf"] == "" {
		t.Errorf("login answered %s", r.body)
	}
	if strings.Contains(string(r.body), testPassword) {
		t.Errorf("login answer carries the password: %s", r.body)
	}
	cookies := (&http.Response{Header: r.header}).Cookies()
	if len(cookies) != 1 || cookies[0].Name != "loa_session" || !cookies[0].HttpOnly || cookies[0].Secure ||
		cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Path != "/" || len(cookies[0].Value) < 43 {
		t.Fatalf("cookie %v (plain HTTP: not Secure)", r.header["Set-Cookie"])
	}
	s := signedIn{cookie: cookies[0].Value, csrf: body["csrf"].(string)}

	r = e.as(s, false, "GET", "/api/v1/me", nil)
	want(t, r, http.StatusOK)
	var me struct {
		User, Name, Role, Area, CSRF string
		AreaName                     string `json:"area_name"`
		Permissions                  []string
		Station                      struct{ Name, Zone string }
	}
	r.json(t, &me)
	if me.User != "lan" || me.Name != "Người lan" || me.Role != "operator" || me.Area != "xa-a" || me.AreaName != "Xã An Khánh" ||
		me.CSRF != s.csrf || strings.Join(me.Permissions, ",") != "read,media,session" ||
		me.Station.Name != api.DefaultStationName || me.Station.Zone != "Asia/Ho_Chi_Minh" {
		t.Errorf("me %s", r.body)
	}

	// Logout is a change: it needs the CSRF token too.
	wantError(t, e.as(s, false, "POST", "/api/v1/logout", nil), http.StatusForbidden, "csrf", "X-CSRF-Token")
	want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	r = e.as(s, true, "POST", "/api/v1/logout", nil)
	want(t, r, http.StatusNoContent)
	if c := (&http.Response{Header: r.header}).Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("logout does not clear the cookie: %v", r.header["Set-Cookie"])
	}
	wantError(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated", "sign in")
	if got := e.auditActions(); !containsAll(got, "user.create", "user.login", "user.logout") {
		t.Errorf("audit %v", got)
	}

	// No credentials at all: the console's cue to show its sign-in screen.
	wantError(t, e.do("GET", "/api/v1/me", "", nil), http.StatusUnauthorized, "unauthenticated")
	// A cookie no session has.
	wantError(t, e.as(signedIn{cookie: strings.Repeat("A", 43)}, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated")
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser("lan", loa.RoleOperator, "xa-a")
	wantError(t, e.login("lan", "wrong password"), http.StatusUnauthorized, "unauthorized", "wrong username or password")
	wantError(t, e.login("nobody", testPassword), http.StatusUnauthorized, "unauthorized", "wrong username or password")
	wantError(t, e.login("", testPassword), http.StatusBadRequest, "invalid", "username")
	wantError(t, e.login("lan", ""), http.StatusBadRequest, "invalid", "password")
	wantError(t, e.login("lan", strings.Repeat("x", 300)), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do("POST", "/api/v1/login", "", `{"username":"lan","password":"`+testPassword+`","x":1}`), http.StatusBadRequest, "invalid", "unknown field")
	// A form a cross-site page could post is refused: no signing a victim in.
	req := e.request("POST", "/api/v1/login", `{"username":"lan","password":"`+testPassword+`"}`)
	req.Header.Set("Content-Type", "text/plain")
	wantError(t, e.send(req), http.StatusUnsupportedMediaType, "unsupported")
}

func TestCookieChangesNeedCSRF(t *testing.T) {
	e := newEnv(t)
	e.addUser("lan", loa.RoleOperator, "xa-a")
	s := e.signIn("lan")
	media := e.withMedia()
	start := map[string]any{"media_id": media, "targets": map[string]any{"areas": []string{"a-1"}}}

	wantError(t, e.as(s, false, "POST", "/api/v1/sessions", start), http.StatusForbidden, "csrf")
	wrong := s
	wrong.csrf = strings.Repeat("x", len(s.csrf))
	wantError(t, e.as(wrong, true, "POST", "/api/v1/sessions", start), http.StatusForbidden, "csrf")
	other := e.signIn("lan") // another tab's session: its own token
	if other.csrf == s.csrf || other.cookie == s.cookie {
		t.Fatal("two sign-ins share a session")
	}
	wantError(t, e.as(signedIn{cookie: s.cookie, csrf: other.csrf}, true, "POST", "/api/v1/sessions", start), http.StatusForbidden, "csrf")
	if n := e.sessions.count(); n != 0 {
		t.Fatalf("%d sessions started without the CSRF token", n)
	}

	r := e.as(s, true, "POST", "/api/v1/sessions", start)
	want(t, r, http.StatusCreated)
	var sess struct {
		ID        string
		CreatedBy string `json:"created_by"`
	}
	r.json(t, &sess)
	if sess.CreatedBy != "user:lan" {
		t.Errorf("session created by %q, want user:lan", sess.CreatedBy)
	}
	// Reads need no CSRF token.
	want(t, e.as(s, false, "GET", "/api/v1/sessions/"+sess.ID, nil), http.StatusOK)
	// The starter may stop it, as a token may stop its own.
	want(t, e.as(s, true, "POST", "/api/v1/sessions/"+sess.ID+"/stop", nil), http.StatusOK)

	// Bearer tokens are unchanged: no CSRF token, and a bearer header wins
	// over a cookie.
	want(t, e.do("POST", "/api/v1/sessions", e.opA, start), http.StatusCreated)
	req := e.request("POST", "/api/v1/sessions", start)
	req.Header.Set("Authorization", "Bearer "+e.techA)
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: s.cookie})
	req.Header.Set(api.CSRFHeader, s.csrf)
	wantError(t, e.send(req), http.StatusForbidden, "forbidden", "technician")
}

func TestCommuneOperatorScopeThroughCookie(t *testing.T) {
	e := newEnv(t)
	e.addUser("lan", loa.RoleOperator, "xa-a")
	s := e.signIn("lan")
	r := e.as(s, false, "GET", "/api/v1/devices", nil)
	want(t, r, http.StatusOK)
	var devs []struct{ ID string }
	r.json(t, &devs)
	if len(devs) != 1 || devs[0].ID != "dev-a1" {
		t.Errorf("operator of xa-a sees %s", r.body)
	}
	wantError(t, e.as(s, false, "GET", "/api/v1/devices/dev-b1", nil), http.StatusNotFound, "not_found")
	wantError(t, e.as(s, false, "GET", "/api/v1/areas/xa-b", nil), http.StatusNotFound, "not_found")
	media := e.withMedia()
	wantError(t, e.as(s, true, "POST", "/api/v1/sessions", map[string]any{"media_id": media, "targets": map[string]any{"areas": []string{"b-1"}}}),
		http.StatusForbidden, "forbidden", "b-1")
	wantError(t, e.as(s, true, "POST", "/api/v1/devices/dev-a1/commands", map[string]any{"op": "volume", "args": map[string]any{"level": 50}}),
		http.StatusForbidden, "forbidden")
	wantError(t, e.as(s, false, "GET", "/api/v1/users", nil), http.StatusForbidden, "forbidden")
	if n := e.sessions.count(); n != 0 {
		t.Errorf("%d sessions started out of scope", n)
	}
}

func TestDisabledUserAndResetPassword(t *testing.T) {
	e := newEnv(t)
	e.addUser("lan", loa.RoleOperator, "xa-a")
	s := e.signIn("lan")

	r := e.do("POST", "/api/v1/users/lan/disable", e.admin, nil)
	want(t, r, http.StatusOK)
	wantError(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated")
	wantError(t, e.login("lan", testPassword), http.StatusForbidden, "forbidden", "disabled")
	wantError(t, e.login("lan", "wrong password"), http.StatusUnauthorized, "unauthorized") // no telling it is disabled

	want(t, e.do("POST", "/api/v1/users/lan/enable", e.admin, nil), http.StatusOK)
	s = e.signIn("lan")
	wantError(t, e.do("POST", "/api/v1/users/lan/password", e.admin, map[string]string{"password": "short"}), http.StatusBadRequest, "invalid", "password")
	wantError(t, e.do("POST", "/api/v1/users/lan/password", e.admin, map[string]string{"password": "lan"}), http.StatusBadRequest, "invalid")
	want(t, e.do("POST", "/api/v1/users/lan/password", e.admin, map[string]string{"password": "một mật khẩu mới"}), http.StatusNoContent)
	wantError(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated")
	wantError(t, e.login("lan", testPassword), http.StatusUnauthorized, "unauthorized")
	want(t, e.login("lan", "một mật khẩu mới"), http.StatusOK)
	if got := e.auditActions(); !containsAll(got, "user.disable", "user.enable", "user.password") {
		t.Errorf("audit %v", got)
	}
}

func TestUsersAdmin(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", loa.RoleAdmin, "")
	e.addUser("lan", loa.RoleOperator, "xa-a")
	e.addUser("duyet", loa.RoleApprover, "xa-a")

	r := e.do("GET", "/api/v1/users", e.admin, nil)
	want(t, r, http.StatusOK)
	if b := string(r.body); strings.Contains(b, "hash") || strings.Contains(b, "argon") || strings.Contains(b, testPassword) {
		t.Errorf("users list shows a password or its hash: %s", b)
	}
	var users []struct{ Username string }
	r.json(t, &users)
	if len(users) != 3 || users[0].Username != "duyet" {
		t.Errorf("users %s", r.body)
	}

	// Bad input changes nothing and names its field.
	for _, c := range []struct {
		body  map[string]any
		code  string
		field string
	}{
		{map[string]any{"username": "Bad Name", "password": testPassword, "role": "operator"}, "invalid", "username"},
		{map[string]any{"username": "x2", "password": "short", "role": "operator"}, "invalid", "password"},
		{map[string]any{"username": "khanhngoc", "password": "KhanhNgoc", "role": "operator"}, "invalid", "password"},
		{map[string]any{"username": "x2", "password": testPassword, "role": "king"}, "invalid", "role"},
		{map[string]any{"username": "x2", "password": testPassword, "role": "operator", "area_id": "nowhere"}, "invalid", "area_id"},
		{map[string]any{"username": "lan", "password": testPassword, "role": "operator"}, "conflict", "username"},
	} {
		r := e.do("POST", "/api/v1/users", e.admin, c.body)
		var body struct{ Code, Field, Error string }
		r.json(t, &body)
		if body.Code != c.code || body.Field != c.field {
			t.Errorf("%v: %d %s, want %s on %s", c.body, r.status, r.body, c.code, c.field)
		}
	}
	// Only admins manage people.
	wantError(t, e.do("POST", "/api/v1/users", e.province, map[string]any{"username": "x3", "password": testPassword, "role": "operator"}),
		http.StatusForbidden, "forbidden", "users")
	wantError(t, e.do("GET", "/api/v1/users/nobody", e.admin, nil), http.StatusNotFound, "not_found")

	// Role and scope change, audited; the approver's permissions.
	r = e.do("PUT", "/api/v1/users/lan", e.admin, map[string]any{"role": "approver", "area_id": "xa-b"})
	want(t, r, http.StatusOK)
	s := e.signIn("lan")
	r = e.as(s, false, "GET", "/api/v1/me", nil)
	var me struct {
		Role, Area  string
		Permissions []string
	}
	r.json(t, &me)
	if me.Role != "approver" || me.Area != "xa-b" || strings.Join(me.Permissions, ",") != "read,approve" {
		t.Errorf("me after the change: %s", r.body)
	}
	wantError(t, e.as(s, true, "POST", "/api/v1/sessions", map[string]any{"media_id": "m-1", "targets": map[string]any{"areas": []string{"b-1"}}}),
		http.StatusForbidden, "forbidden", "approver")
	if got := e.auditActions(); !containsAll(got, "user.update") {
		t.Errorf("audit %v", got)
	}
}

func TestLastAdminProtected(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", loa.RoleAdmin, "")
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users/root/disable", nil},
		{"PUT", "/api/v1/users/root", map[string]any{"role": "operator"}},
		{"PUT", "/api/v1/users/root", map[string]any{"area_id": "xa-a"}},
	} {
		wantError(t, e.do(c.method, c.path, e.admin, c.body), http.StatusConflict, "conflict", "last")
	}
	// Even by itself, signed in.
	s := e.signIn("root")
	wantError(t, e.as(s, true, "POST", "/api/v1/users/root/disable", nil), http.StatusConflict, "conflict", "last")
	want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)

	// With a second admin, the first may go.
	e.addUser("root2", loa.RoleAdmin, "")
	want(t, e.do("POST", "/api/v1/users/root/disable", e.admin, nil), http.StatusOK)
	wantError(t, e.do("POST", "/api/v1/users/root2/disable", e.admin, nil), http.StatusConflict, "conflict")
}

// clock is a settable clock for the tests of time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withClock serves e's store through a second server on clk, for the
// tests of back-off and session timeouts.
func (e *env) withClock(clk *clock) *env {
	s := *e.server
	s.Now = clk.Now
	srv := httptest.NewServer(api.ValidateWithSpec(e.t, s.Handler()))
	e.t.Cleanup(srv.Close)
	e2 := *e
	e2.srv = srv
	return &e2
}

func TestLoginBackoffHoldsAndReleases(t *testing.T) {
	base := newEnv(t)
	base.addUser("lan", loa.RoleOperator, "xa-a")
	base.addUser("binh", loa.RoleOperator, "xa-b")
	clk := &clock{now: testNow}
	e := base.withClock(clk)

	// The same answers, in the same order, for a known and an unknown
	// account: nothing tells which exists.
	for _, user := range []string{"lan", "nobody"} {
		for range 5 {
			wantError(t, e.login(user, "wrong password"), http.StatusUnauthorized, "unauthorized")
		}
		for _, pw := range []string{"wrong password", testPassword} {
			r := e.login(user, pw)
			wantError(t, r, http.StatusTooManyRequests, "login_backoff")
			if ra := r.header.Get("Retry-After"); ra != "1" {
				t.Errorf("%s: Retry-After %q, want 1", user, ra)
			}
		}
	}
	// Per account: another one signs in from the same address.
	want(t, e.login("binh", testPassword), http.StatusOK)

	// Released after the wait; the next failure doubles it.
	clk.advance(time.Second)
	wantError(t, e.login("lan", "wrong password"), http.StatusUnauthorized, "unauthorized")
	r := e.login("lan", testPassword)
	wantError(t, r, http.StatusTooManyRequests, "login_backoff")
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q after the 6th failure, want 2", ra)
	}
	clk.advance(2 * time.Second)
	want(t, e.login("lan", testPassword), http.StatusOK)
	// A success starts afresh: five free failures again.
	for range 5 {
		wantError(t, e.login("lan", "wrong password"), http.StatusUnauthorized, "unauthorized")
	}
	wantError(t, e.login("lan", testPassword), http.StatusTooManyRequests, "login_backoff")
	// The wait never passes five minutes.
	for range 10 {
		clk.advance(5 * time.Minute)
		wantError(t, e.login("lan", "wrong password"), http.StatusUnauthorized, "unauthorized")
	}
	r = e.login("lan", testPassword)
	if ra := r.header.Get("Retry-After"); ra != "300" {
		t.Errorf("Retry-After %q at the cap, want 300", ra)
	}
}

func TestSessionTimeouts(t *testing.T) {
	base := newEnv(t)
	base.addUser("lan", loa.RoleOperator, "xa-a")
	clk := &clock{now: testNow}
	e := base.withClock(clk)

	// Idle: 12 h unused ends it.
	s := e.signIn("lan")
	clk.advance(loa.SessionIdle - time.Minute)
	want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK) // used: idle starts again
	clk.advance(loa.SessionIdle - time.Minute)
	want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	clk.advance(loa.SessionIdle)
	wantError(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated")

	// Absolute: 7 days after sign-in, however busy.
	s = e.signIn("lan")
	for elapsed := time.Duration(0); elapsed+11*time.Hour < loa.SessionMaxAge; elapsed += 11 * time.Hour {
		clk.advance(11 * time.Hour)
		want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	}
	clk.advance(11 * time.Hour)
	wantError(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusUnauthorized, "unauthenticated")
}

// containsAll reports whether list has, for each of want, an audit line
// ("action object") of that action.
func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || strings.HasPrefix(l, w+" ")
		}
		if !found {
			return false
		}
	}
	return true
}

// A full disk refuses changes, not a signed-in user's reads: noting a
// session's use is best effort.
func TestSignedInReadsOnAFullDisk(t *testing.T) {
	faults := new(store.WriteFaults)
	base := newEnvWith(t, store.Options{Faults: faults})
	base.addUser("lan", loa.RoleOperator, "xa-a")
	clk := &clock{now: testNow}
	e := base.withClock(clk)
	s := e.signIn("lan")
	if err := faults.Arm(); err != nil {
		t.Fatal(err)
	}
	defer faults.Disarm()
	clk.advance(10 * time.Minute) // past the interval at which a use is written
	want(t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	want(t, e.as(s, false, "GET", "/api/v1/devices", nil), http.StatusOK)
	wantError(t, e.login("lan", testPassword), http.StatusInsufficientStorage, loa.ENOSPACE)
}

// A scoped admin manages only the people of its scope, and grants no
// scope wider than its own.
func TestScopedAdminManagesItsScopeOnly(t *testing.T) {
	e := newEnv(t)
	tok := &loa.Token{Name: "admin of xa-a", Role: loa.RoleAdmin, AreaID: "xa-a"}
	adminA, err := e.db.CreateToken(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	e.addUser("root", loa.RoleAdmin, "")
	e.addUser("binh", loa.RoleOperator, "xa-b")
	body := func(user, area string) map[string]any {
		return map[string]any{"username": user, "password": testPassword, "role": "operator", "area_id": area}
	}
	want(t, e.do("POST", "/api/v1/users", adminA, body("lan", "a-1")), http.StatusCreated)
	wantError(t, e.do("POST", "/api/v1/users", adminA, body("x1", "xa-b")), http.StatusForbidden, "forbidden", "outside your scope")
	wantError(t, e.do("POST", "/api/v1/users", adminA, body("x2", "")), http.StatusForbidden, "forbidden", "outside your scope")

	r := e.do("GET", "/api/v1/users", adminA, nil)
	want(t, r, http.StatusOK)
	var users []struct{ Username string }
	r.json(t, &users)
	if len(users) != 1 || users[0].Username != "lan" {
		t.Errorf("a scoped admin lists %s", r.body)
	}
	for _, path := range []string{"/api/v1/users/root/disable", "/api/v1/users/binh/disable"} {
		wantError(t, e.do("POST", path, adminA, nil), http.StatusNotFound, "not_found")
	}
	wantError(t, e.do("PUT", "/api/v1/users/lan", adminA, map[string]any{"area_id": "hn"}), http.StatusForbidden, "forbidden", "outside your scope")
	want(t, e.do("PUT", "/api/v1/users/lan", adminA, map[string]any{"area_id": "xa-a", "name": "Lan"}), http.StatusOK)
}
