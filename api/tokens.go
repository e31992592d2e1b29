package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// maxCAPSenders bounds the CAP senders one token may be granted.
const maxCAPSenders = 32

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	AreaID     string   `json:"area_id"`
	CAPSenders []string `json:"cap_senders"`
	ExpiresAt  string   `json:"expires_at"` // RFC 3339; "" = never
	// ClientCertSHA256 binds the token to a TLS client certificate.
	ClientCertSHA256 string `json:"client_cert_sha256"`
}

// tokenCreated is the answer to POST /api/v1/tokens. The secret is shown
// this once; only its hash is stored.
type tokenCreated struct {
	Token  *loa.Token `json:"token"`
	Secret string     `json:"secret"`
}

// createToken issues a token no wider than the caller's own: its scope
// within the caller's, its CAP senders among the caller's (a station-wide
// admin grants any).
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req tokenRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if err := loa.ValidateName("name", name, true); err != nil {
		return err
	}
	if !loa.ValidTokenRole(req.Role) {
		return loa.Errorf(loa.EINVALID, "role: must be one of %s, not %s", loa.RoleList()+", "+loa.RoleFeed, strconv.Quote(req.Role))
	}
	if req.AreaID != "" {
		if err := loa.ValidateID("area_id", req.AreaID); err != nil {
			return err
		}
	}
	if len(req.CAPSenders) > maxCAPSenders {
		return loa.Errorf(loa.EINVALID, "cap_senders: at most %d", maxCAPSenders)
	}
	for i, snd := range req.CAPSenders {
		if err := cap.CheckSender(snd); err != nil {
			return loa.Errorf(loa.EINVALID, "cap_senders[%d]: %s", i, loa.ErrorMessage(err))
		}
		if !c.tok.MaySendCAPAs(snd) {
			return loa.Errorf(loa.EFORBIDDEN, "cap_senders[%d]: %q is not among your own CAP senders", i, snd)
		}
	}
	fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(req.ClientCertSHA256), ":", ""))
	if fp != "" && !isSHA256Hex(fp) {
		return loa.Errorf(loa.EINVALID, "client_cert_sha256: the SHA-256 of the client certificate's DER, 64 hex digits (GET /api/v1/national/identity of the national controller shows it)")
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return loa.Errorf(loa.EINVALID, "expires_at: %s is not an RFC 3339 time like 2027-01-01T00:00:00+07:00", strconv.Quote(req.ExpiresAt))
		}
		if !t.After(s.now()) {
			return loa.Errorf(loa.EINVALID, "expires_at: %s is already past", req.ExpiresAt)
		}
		expires = t.UTC()
	}
	if !c.tok.ExpiresAt.IsZero() && (expires.IsZero() || expires.After(c.tok.ExpiresAt)) {
		return loa.Errorf(loa.EFORBIDDEN, "expires_at: your own token expires at %s; a token you make may not outlive it",
			c.tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if c.scoped() {
		ok, err := c.areaInScope(req.AreaID)
		if err != nil {
			return err
		}
		if req.AreaID == "" || !ok {
			return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", req.AreaID, c.tok.AreaID)
		}
	}
	if req.AreaID != "" {
		if s.Areas == nil {
			return errUnavailable("area")
		}
		if _, err := s.Areas.Area(r.Context(), req.AreaID); err != nil {
			if loa.ErrorCode(err) == loa.ENOTFOUND {
				return loa.Errorf(loa.EINVALID, "area_id: area %q not found", req.AreaID)
			}
			return err
		}
	}
	if s.Tokens == nil {
		return errUnavailable("token")
	}
	t := &loa.Token{Name: name, Role: req.Role, AreaID: req.AreaID, CAPSenders: slices.Compact(slices.Sorted(slices.Values(req.CAPSenders))),
		CreatedBy: c.tok.ID, ExpiresAt: expires, ClientCertSHA256: fp}
	secret, err := s.Tokens.CreateToken(r.Context(), t)
	if err != nil {
		return err
	}
	detail := t.Role + " " + t.AreaID
	if len(t.CAPSenders) > 0 {
		detail += ", CAP senders " + strings.Join(t.CAPSenders, " ")
	}
	if t.ClientCertSHA256 != "" {
		detail += ", client certificate " + t.ClientCertSHA256
	}
	if !t.ExpiresAt.IsZero() {
		detail += ", expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	c.audit("token.create", t.ID, detail)
	writeJSON(w, http.StatusCreated, tokenCreated{Token: t, Secret: secret})
	return nil
}

// tokenVisible reports whether the caller may see and revoke t: an
// unscoped caller every token, a scoped one the tokens scoped within its
// own scope.
func (c *call) tokenVisible(t *loa.Token) (bool, error) {
	if !c.scoped() {
		return true, nil
	}
	if t.AreaID == "" {
		return false, nil
	}
	return c.areaInScope(t.AreaID)
}

// listTokens answers the tokens the caller may see, revoked and expired
// ones too; never a secret or its hash.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Tokens == nil {
		return errUnavailable("token")
	}
	all, err := s.Tokens.Tokens(r.Context())
	if err != nil {
		return err
	}
	if c.scoped() {
		if _, err := c.areaList(); err != nil { // one read of the subtree
			return err
		}
	}
	out := make([]*loa.Token, 0, len(all))
	for _, t := range all {
		if ok, err := c.tokenVisible(t); err != nil {
			return err
		} else if ok {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeToken refuses a token from the next request on.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Tokens == nil {
		return errUnavailable("token")
	}
	id := r.PathValue("id")
	t, err := s.Tokens.Token(r.Context(), id)
	if err != nil {
		return err
	}
	if ok, err := c.tokenVisible(t); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "token %q not found", id)
	}
	if t, err = s.Tokens.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	c.audit("token.revoke", t.ID, fmt.Sprintf("%s %q %s", t.Role, t.Name, t.AreaID))
	writeJSON(w, http.StatusOK, t)
	return nil
}

// isSHA256Hex reports whether s is 64 lower-case hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
