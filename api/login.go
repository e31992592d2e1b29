package api

import (
	"bytes"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// Sign-in by cookie, for the console. A session's id is the cookie's
// value (only its hash is stored); its CSRF token must come back in
// CSRFHeader on every change made with the cookie.
const (
	SessionCookie = "loa_session"
	CSRFHeader    = "X-CSRF-Token"
)

// DefaultStationName names the station in /me when Server.StationName is "".
const DefaultStationName = "Loa"

// loginRequest is the body of POST /api/v1/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loginAnswer is the answer to a sign-in.
type loginAnswer struct {
	User string `json:"user"`
	Role string `json:"role"`
	Area string `json:"area,omitempty"`
	CSRF string `json:"csrf"`
}

// meAnswer is who the caller is, for the console to show and to hide
// what it may not do.
type meAnswer struct {
	User        string      `json:"user"` // a username, or a token id
	Name        string      `json:"name"`
	Role        string      `json:"role"`
	Area        string      `json:"area,omitempty"`
	AreaName    string      `json:"area_name,omitempty"`
	Permissions []string    `json:"permissions"`
	CSRF        string      `json:"csrf,omitempty"`  // a cookie session's only
	Email       string      `json:"email,omitempty"` // a signed-in person's contact details
	Phone       string      `json:"phone,omitempty"`
	Station     stationInfo `json:"station"`
}

type stationInfo struct {
	Name string   `json:"name"`
	Zone string   `json:"zone"`
	Map  *mapInfo `json:"map,omitempty"` // tiles configured: the console draws them
	// National: a national controller (-national); the console shows its screen.
	National bool `json:"national,omitempty"`
	// Cluster: this node's place in the Raft group; absent on a single
	// controller. On a follower the console says it is read-only and
	// names the leader its changes go to.
	Cluster *ClusterRole `json:"cluster,omitempty"`
}

// mapInfo is the console map's tile source: a URL template with {z},
// {x}, {y} (and {s}, {r} as Leaflet takes them), and its credit.
type mapInfo struct {
	Tiles       string `json:"tiles"`
	Attribution string `json:"attribution"`
}

// parseLogin reads a sign-in body: one JSON object with a username and a
// password, both present. The username is matched case-insensitively.
func parseLogin(body []byte) (loginRequest, error) {
	var req loginRequest
	if err := decodeJSON(bytes.NewReader(body), &req); err != nil {
		return req, err
	}
	req.Username = strings.ToLower(strings.TrimSpace(req.Username))
	if req.Username == "" {
		return req, loa.Errorf(loa.EINVALID, "username: required")
	}
	if req.Password == "" {
		return req, loa.Errorf(loa.EINVALID, "password: required")
	}
	return req, nil
}

// login checks a username and password and starts a sign-in session. The
// account's back-off applies before the password is checked, and to
// unknown usernames as to known ones, so neither timing nor answers tell
// which exist.
func (s *Server) login(b *loginBackoff) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.doLogin(w, r, b); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) doLogin(w http.ResponseWriter, r *http.Request, b *loginBackoff) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		// A cross-site form cannot send JSON: no signing a victim in as someone else.
		return loa.Errorf(loa.EUNSUPPORTED, "Content-Type: send application/json")
	}
	body, err := readBody(r.Body, maxLoginBody)
	if err != nil {
		return err
	}
	req, err := parseLogin(body)
	if err != nil {
		return err
	}
	if s.Users == nil {
		return errUnavailable("user")
	}
	// The account's key: no username is longer than loa.MaxUsername, so a
	// longer one is cut (bounding the back-off's memory), not told apart.
	key := req.Username
	if len(key) > loa.MaxUsername+1 {
		key = key[:loa.MaxUsername+1]
	}
	if wait := b.begin(key); wait > 0 {
		return retryLater{loa.Errorf(loa.ELOGINBACKOFF, "too many failed sign-ins for this account; try again in %s", wait.Round(time.Second)), wait}
	}
	u, err := s.Users.CheckPassword(r.Context(), req.Username, req.Password)
	switch loa.ErrorCode(err) {
	case "":
	case loa.EUNAUTHORIZED:
		// Not the username: people type their password there by mistake.
		s.logger().LogAttrs(r.Context(), slog.LevelInfo, "sign-in refused: wrong username or password")
		return err // the attempt stays counted
	default:
		b.refund(key) // not a wrong password
		return err
	}
	b.succeeded(key)
	id, csrf, err := s.Users.StartSession(r.Context(), u.Username, s.now())
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: int(loa.SessionMaxAge / time.Second),
	})
	s.auditAs(r, u.Principal(), "user.login", u.Username, "")
	writeJSON(w, http.StatusOK, loginAnswer{User: u.Username, Role: u.Role, Area: u.AreaID, CSRF: csrf})
	return nil
}

// maxLoginBody bounds a sign-in body: a username and a password.
const maxLoginBody = 4 << 10

// logout ends the caller's sign-in session and clears its cookie; for a
// bearer token it does nothing (revoke a token instead).
func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.user != nil {
		if err := s.Users.EndSession(r.Context(), c.sess); err != nil {
			return err
		}
		c.audit("user.logout", c.user.Username, "")
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// me answers who the caller is: a signed-in user (with its CSRF token) or
// a bearer token (user is its id).
func (s *Server) me(w http.ResponseWriter, r *http.Request, c *call) error {
	a := meAnswer{User: c.tok.ID, Name: c.tok.Name, Role: c.tok.Role, Area: c.tok.AreaID,
		Permissions: c.tok.Permissions(), CSRF: c.csrf, Station: stationInfo{Name: s.StationName, Zone: loa.DefaultZone, National: s.National != nil}}
	if c.user != nil {
		a.User, a.Email, a.Phone = c.user.Username, c.user.Email, c.user.Phone
	}
	if a.Station.Name == "" {
		a.Station.Name = DefaultStationName
	}
	if s.MapTiles != "" {
		a.Station.Map = &mapInfo{Tiles: s.MapTiles, Attribution: s.MapAttribution}
	}
	if cr, ok := s.Cluster.(ClusterRoler); ok {
		role := cr.ClusterRole()
		a.Station.Cluster = &role
	}
	if a.Area != "" && s.Areas != nil {
		if area, err := s.Areas.Area(r.Context(), a.Area); err == nil {
			a.AreaName = area.Name
		} else if loa.ErrorCode(err) != loa.ENOTFOUND {
			return err
		}
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// auditAs records what actor did outside an authenticated call (a
// sign-in); a failure is logged, not returned.
func (s *Server) auditAs(r *http.Request, actor *loa.Token, action, object, detail string) {
	c := &call{s: s, ctx: r.Context(), tok: actor}
	c.audit(action, object, detail)
}

// retryLater is an error whose answer says when to try again (Retry-After).
type retryLater struct {
	err   error
	after time.Duration
}

func (e retryLater) Error() string             { return e.err.Error() }
func (e retryLater) Unwrap() error             { return e.err }
func (e retryLater) RetryAfter() time.Duration { return e.after }

// Sign-in back-off, per account, never per address: a whole commune may
// share one carrier-NAT address. The first loginFree failures are free;
// each one after locks the account for loginBackoffBase, doubling up to
// loginBackoffMax. An account left alone for loginForget starts afresh.
const (
	loginFree        = 5
	loginBackoffBase = time.Second
	loginBackoffMax  = 5 * time.Minute
	loginForget      = time.Hour
	loginAccountsMax = 100_000 // accounts remembered; bounds memory against made-up usernames
)

// loginBackoff counts failed sign-ins per username. An attempt is counted
// when it begins, so concurrent guesses cannot all pass before the first
// fails; a sign-in that succeeds or fails for another reason is refunded.
type loginBackoff struct {
	now      func() time.Time
	mu       sync.Mutex
	accounts map[string]*loginAttempts
}

type loginAttempts struct {
	failures int
	until    time.Time // locked before this
	last     time.Time // the last attempt
}

func newLoginBackoff(now func() time.Time) *loginBackoff {
	if now == nil {
		now = time.Now
	}
	return &loginBackoff{now: now, accounts: map[string]*loginAttempts{}}
}

// begin counts an attempt for username, or returns how long it must wait.
func (b *loginBackoff) begin(username string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	a := b.accounts[username]
	if a != nil && now.Sub(a.last) >= loginForget && !now.Before(a.until) {
		a = nil
	}
	if a == nil {
		b.makeRoom(now)
		a = &loginAttempts{}
		b.accounts[username] = a
	}
	if wait := a.until.Sub(now); wait > 0 {
		return wait
	}
	a.failures++
	a.last = now
	if a.failures >= loginFree {
		a.until = now.Add(min(loginBackoffMax, loginBackoffBase<<min(a.failures-loginFree, 20)))
	}
	return 0
}

// refund takes back the attempt begin counted, and its lock.
func (b *loginBackoff) refund(username string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.accounts[username]; a != nil && a.failures > 0 {
		a.failures--
		a.until = time.Time{}
		if a.failures >= loginFree {
			a.until = a.last.Add(min(loginBackoffMax, loginBackoffBase<<min(a.failures-loginFree, 20)))
		}
	}
}

// succeeded forgets username's failures.
func (b *loginBackoff) succeeded(username string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.accounts, username)
}

// makeRoom drops forgotten accounts when the map is full, then, if it is
// still full, any unlocked one.
func (b *loginBackoff) makeRoom(now time.Time) {
	if len(b.accounts) < loginAccountsMax {
		return
	}
	for k, a := range b.accounts {
		if now.Sub(a.last) >= loginForget && !now.Before(a.until) {
			delete(b.accounts, k)
		}
	}
	for k, a := range b.accounts {
		if len(b.accounts) < loginAccountsMax {
			return
		}
		if !now.Before(a.until) {
			delete(b.accounts, k)
		}
	}
}
