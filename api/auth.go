package api

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// handler serves one authenticated API call. A returned error becomes the
// JSON error response; a handler that returns nil has written its answer.
type handler func(w http.ResponseWriter, r *http.Request, c *call) error

// call is what a handler knows about the caller: the token and, loaded on
// first use, the part of the area tree and the devices its scope is
// checked with. A scoped call loads only its own subtree and the paths of
// the areas it asks about, never the whole tree (see AreaIndex).
type call struct {
	s       *Server
	ctx     context.Context
	tok     *loa.Token
	user    *loa.User    // the signed-in user of a cookie session; nil for a bearer token
	sess    string       // the cookie session's id
	csrf    string       // and its CSRF token
	areas   []*loa.Area  // what areaList answered
	listed  bool         // areas (and tree) hold every area the caller may see
	tree    loa.AreaTree // every area loaded so far, each with its ancestors
	missing map[string]bool
	devices map[string]*loa.Device
}

// AreaIndex is the area tree's index (store.DB): a subtree and a path to
// the root, each read without loading the rest of the tree. Without it
// (an AreaService that lacks it) every scoped call loads every area.
type AreaIndex interface {
	AreaSubtree(ctx context.Context, root string) ([]*loa.Area, error)
	AreaPath(ctx context.Context, id string) ([]*loa.Area, error)
}

// auth checks the caller's credentials — a bearer token, or a sign-in
// session's cookie with, on a change, its CSRF token — and that its role
// may perform action, then runs h.
func (s *Server) auth(action string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tok := c.tok
		if sw, ok := w.(*statusWriter); ok {
			sw.actor = tok.ID
		}
		if c.user != nil && r.Method != http.MethodGet && r.Method != http.MethodHead &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(c.csrf)) != 1 {
			s.writeError(w, r, loa.Errorf(loa.ECSRF, "a change signed in by cookie needs the session's %s header (the csrf of /api/v1/me)", CSRFHeader))
			return
		}
		if !tok.Can(action) {
			s.writeError(w, r, loa.Errorf(loa.EFORBIDDEN, "role %s may not do this (needs the %q permission)", tok.Role, action))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// A change commits its audit record with it (loa.AuditJournal).
			j := &loa.AuditJournal{Base: loa.AuditRecord{
				Actor: tok.ID, Action: r.Pattern, Object: r.URL.Path, Scope: tok.AreaID,
				Detail: "recorded with the change; its detailed record could not be written",
			}}
			defer j.Close()
			r = r.WithContext(loa.WithAuditJournal(r.Context(), j))
		}
		c.ctx = r.Context()
		if err := h(w, r, c); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// maxSecret bounds a bearer secret; longer ones are not looked up.
const maxSecret = 256

// authenticate returns the call of the request's credentials: the token
// of its bearer secret or, without an Authorization header, the user of
// its session cookie acting as that user's Principal. A request with
// neither, or whose session has ended, is EUNAUTHENTICATED.
func (s *Server) authenticate(r *http.Request) (*call, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
			return s.sessionCall(r, ck.Value)
		}
		if fp := clientCert(r); fp != "" {
			return s.certCall(r, fp)
		}
		return nil, loa.Errorf(loa.EUNAUTHENTICATED, "missing credentials: sign in, or send Authorization: Bearer <token>")
	}
	scheme, secret, ok := strings.Cut(authz, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "missing credentials: send Authorization: Bearer <token>")
	}
	if len(secret) > maxSecret {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "unknown token")
	}
	if s.Tokens == nil {
		return nil, errUnavailable("token")
	}
	tok, err := s.Tokens.TokenBySecret(r.Context(), secret)
	if err != nil {
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			err = loa.Errorf(loa.EUNAUTHORIZED, "unknown token")
		}
		return nil, err
	}
	if tok == nil {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "unknown token")
	}
	if tok.ClientCertSHA256 != "" && clientCert(r) != tok.ClientCertSHA256 {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "token %s is bound to a client certificate: present it over HTTPS", tok.ID)
	}
	return &call{s: s, ctx: r.Context(), tok: tok}, nil
}

// ClientCertTokens finds the token bound to a TLS client certificate
// (store.DB); without it on Server.Tokens no certificate authenticates.
type ClientCertTokens interface {
	TokenByClientCert(ctx context.Context, sha256hex string) (*loa.Token, error)
}

// clientCert is the fingerprint (loa.CertSHA256) of the client
// certificate of an HTTPS request, "" without one. The handshake proved
// the client holds its key; whom it stands for is the token bound to it.
func clientCert(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return loa.CertSHA256(r.TLS.PeerCertificates[0].Raw)
}

// certCall is the call of the token bound to client certificate fp.
func (s *Server) certCall(r *http.Request, fp string) (*call, error) {
	ct, ok := s.Tokens.(ClientCertTokens)
	if !ok {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "client certificates do not authenticate here: send Authorization: Bearer <token>")
	}
	tok, err := ct.TokenByClientCert(r.Context(), fp)
	if err != nil {
		return nil, err
	}
	return &call{s: s, ctx: r.Context(), tok: tok}, nil
}

// sessionCall is the call of sign-in session id.
func (s *Server) sessionCall(r *http.Request, id string) (*call, error) {
	if s.Users == nil {
		return nil, errUnavailable("user")
	}
	u, csrf, err := s.Users.SessionUser(r.Context(), id, s.now())
	if err != nil {
		return nil, err
	}
	return &call{s: s, ctx: r.Context(), tok: u.Principal(), user: u, sess: id, csrf: csrf}, nil
}

// scoped reports whether the caller's token is limited to an area subtree.
func (c *call) scoped() bool { return c.tok.AreaID != "" }

// areaList returns, once per call, the areas the caller may see: every
// area for an unscoped caller; for a scoped one its scope's subtree, read
// through the index, and (in the tree only) the scope's ancestors.
func (c *call) areaList() ([]*loa.Area, error) {
	if c.listed {
		return c.areas, nil
	}
	if c.s.Areas == nil {
		return nil, errUnavailable("area")
	}
	idx, ok := c.s.Areas.(AreaIndex)
	if !c.scoped() || !ok {
		areas, err := c.s.Areas.Areas(c.ctx)
		if err != nil {
			return nil, err
		}
		c.areas, c.tree, c.listed = areas, loa.NewAreaTree(areas), true
		return areas, nil
	}
	sub, err := idx.AreaSubtree(c.ctx, c.tok.AreaID)
	if err != nil && loa.ErrorCode(err) != loa.ENOTFOUND {
		return nil, err
	}
	if err := c.loadPath(c.tok.AreaID); err != nil {
		return nil, err
	}
	for _, a := range sub {
		c.tree[a.ID] = a
	}
	c.areas, c.listed = sub, true
	return sub, nil
}

// loadPath adds area id and its ancestors to the call's tree: O(depth).
// An unknown id is remembered as such.
func (c *call) loadPath(id string) error {
	if c.tree == nil {
		c.tree = loa.AreaTree{}
	}
	if c.tree[id] != nil || c.missing[id] {
		return nil
	}
	if c.s.Areas == nil {
		return errUnavailable("area")
	}
	idx, ok := c.s.Areas.(AreaIndex)
	if !ok {
		_, err := c.areaList()
		return err
	}
	path, err := idx.AreaPath(c.ctx, id)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		if c.missing == nil {
			c.missing = map[string]bool{}
		}
		c.missing[id] = true
		return nil
	} else if err != nil {
		return err
	}
	for _, a := range path {
		c.tree[a.ID] = a
	}
	return nil
}

// areaInScope reports whether area id is within the caller's scope. Once
// the caller's subtree is loaded it answers from it; before, it reads only
// id's path to the root.
func (c *call) areaInScope(id string) (bool, error) {
	if !c.scoped() {
		return true, nil
	}
	if c.listed {
		return c.tree.Within(id, c.tok.AreaID), nil
	}
	if err := c.loadPath(id); err != nil {
		return false, err
	}
	return c.tree.Within(id, c.tok.AreaID), nil
}

// deviceInScope reports whether device id exists and is within the caller's
// scope. For an unscoped caller it only reports whether the device exists.
// A decommissioned device still counts: its history stays readable. Each
// device is read once per call, by id.
func (c *call) deviceInScope(id string) (bool, error) {
	if c.s.Devices == nil {
		return false, errUnavailable("device")
	}
	d, seen := c.devices[id]
	if !seen {
		var err error
		d, err = c.s.Devices.Device(c.ctx, id)
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			d = nil
		} else if err != nil {
			return false, err
		}
		if c.devices == nil {
			c.devices = map[string]*loa.Device{}
		}
		c.devices[id] = d
	}
	if d == nil {
		return false, nil
	}
	return c.areaInScope(d.AreaID)
}

// targetsInScope returns the first target outside the caller's scope, as
// "targets.areas: x" or "targets.devices: y", or "" if every target is in.
func (c *call) targetsInScope(t loa.Targets) (string, error) {
	if !c.scoped() {
		return "", nil
	}
	for _, a := range t.Areas {
		if ok, err := c.areaInScope(a); err != nil || !ok {
			return "targets.areas: " + a, err
		}
	}
	for _, d := range t.Devices {
		if ok, err := c.deviceInScope(d); err != nil || !ok {
			return "targets.devices: " + d, err
		}
	}
	return "", nil
}

// audit records a change the caller made. It replaces the provisional
// record the store committed with the change (loa.AuditJournal), so a
// failure to write it leaves that one standing; the change has happened,
// so the failure is logged, not returned.
func (c *call) audit(action, object, detail string) {
	if c.s.Audit == nil {
		return
	}
	rec := loa.AuditRecord{Actor: c.tok.ID, Action: action, Object: object, Detail: detail, Scope: c.tok.AreaID}
	if err := c.s.Audit.Audit(c.ctx, rec); err != nil {
		c.s.logger().LogAttrs(c.ctx, slog.LevelError, "audit record lost",
			slog.String("actor", rec.Actor), slog.String("action", action),
			slog.String("object", object), slog.Any("err", err))
	}
}

// errUnavailable reports a service the server was built without.
func errUnavailable(service string) error {
	return loa.Errorf(loa.EUNAVAILABLE, "the %s service is not configured", service)
}
