package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// scopedAdmin adds an admin token scoped to area and returns its secret.
func (e *env) scopedAdmin(area string) string {
	e.t.Helper()
	tok := &loa.Token{Name: "admin of " + area, Role: loa.RoleAdmin, AreaID: area}
	secret, err := e.db.CreateToken(e.t.Context(), tok)
	if err != nil {
		e.t.Fatal(err)
	}
	e.tokens[secret] = tok
	return secret
}

func (e *env) tokenIDs(secret string) []string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/tokens", secret, nil)
	want(e.t, r, http.StatusOK)
	if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "hash") || strings.Contains(string(r.body), "loa_") {
		e.t.Errorf("token list shows a secret or its hash: %s", r.body)
	}
	var list []loa.Token
	r.json(e.t, &list)
	var ids []string
	for _, t := range list {
		ids = append(ids, t.ID)
	}
	return ids
}

// TestTokensListedNamedRevokedAndExpiring lists tokens by scope, revokes
// one (refused at its next request), and refuses an expired one.
func TestTokensListedNamedRevokedAndExpiring(t *testing.T) {
	e := newEnv(t)
	adminA := e.scopedAdmin("xa-a")
	r := e.do("POST", "/api/v1/tokens", adminA, map[string]any{"name": "Cán bộ cụm 1", "role": "operator", "area_id": "a-1",
		"expires_at": "2099-01-01T00:00:00+07:00"})
	want(t, r, http.StatusCreated)
	var made struct {
		Token  loa.Token `json:"token"`
		Secret string    `json:"secret"`
	}
	r.json(t, &made)
	if made.Token.Name != "Cán bộ cụm 1" || !made.Token.ExpiresAt.Equal(time.Date(2098, 12, 31, 17, 0, 0, 0, time.UTC)) ||
		made.Token.CreatedBy != e.tokens[adminA].ID {
		t.Errorf("created %+v", made.Token)
	}
	want(t, e.do("GET", "/api/v1/me", made.Secret, nil), http.StatusOK)

	all := e.tokenIDs(e.admin)
	if len(all) != len(e.tokens)+1 {
		t.Errorf("admin lists %d tokens, want %d", len(all), len(e.tokens)+1)
	}
	inA := e.tokenIDs(adminA)
	wantA := []string{e.tokens[e.opA].ID, e.tokens[e.techA].ID, e.tokens[e.provA].ID, e.tokens[adminA].ID, made.Token.ID}
	slices.Sort(inA)
	slices.Sort(wantA)
	if !slices.Equal(inA, wantA) {
		t.Errorf("the admin of xa-a lists %v, want %v", inA, wantA)
	}

	// Out of scope: not found, and the token still works.
	wantError(t, e.do("DELETE", "/api/v1/tokens/"+e.tokens[e.opB].ID, adminA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("DELETE", "/api/v1/tokens/"+e.tokens[e.admin].ID, adminA, nil), http.StatusNotFound, "not_found")
	want(t, e.do("GET", "/api/v1/me", e.opB, nil), http.StatusOK)
	wantError(t, e.do("DELETE", "/api/v1/tokens/"+made.Token.ID, e.opA, nil), http.StatusForbidden, "forbidden")

	r = e.do("DELETE", "/api/v1/tokens/"+made.Token.ID, adminA, nil)
	want(t, r, http.StatusOK)
	var revoked loa.Token
	r.json(t, &revoked)
	if revoked.RevokedAt.IsZero() {
		t.Errorf("revoked token %+v has no revoked_at", revoked)
	}
	wantError(t, e.do("GET", "/api/v1/me", made.Secret, nil), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do("DELETE", "/api/v1/tokens/"+made.Token.ID, adminA, nil), http.StatusConflict, "conflict", "revoked")
	if got := e.auditActions(); !slices.Contains(got, "token.revoke "+made.Token.ID) {
		t.Errorf("audit %v lacks the revocation", got)
	}

	// Expired: refused with a message saying so.
	old := &loa.Token{Name: "hết hạn", Role: loa.RoleOperator, AreaID: "xa-a", ExpiresAt: time.Now().Add(-time.Minute)}
	secret, err := e.db.CreateToken(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do("GET", "/api/v1/me", secret, nil), http.StatusUnauthorized, "unauthorized", "expired")

	// Bad requests.
	for _, body := range []map[string]any{
		{"name": "x", "role": "operator", "area_id": "a-1", "expires_at": "tomorrow"},
		{"name": "x", "role": "operator", "area_id": "a-1", "expires_at": "2020-01-01T00:00:00Z"},
		{"name": "x", "role": "operator", "area_id": "a-1", "cap_senders": []string{"bad sender"}},
	} {
		wantError(t, e.do("POST", "/api/v1/tokens", e.admin, body), http.StatusBadRequest, "invalid")
	}
	// A scoped admin grants only CAP senders it has itself.
	wantError(t, e.do("POST", "/api/v1/tokens", adminA, map[string]any{"name": "x", "role": "province", "area_id": "xa-a",
		"cap_senders": []string{"kttv.hanoi"}}), http.StatusForbidden, "forbidden", "cap_senders")
}

// TestAuditLogIsScoped: a scoped admin reads what callers of its scope
// did, not what others did.
func TestAuditLogIsScoped(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	_, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}})
	want(t, r, http.StatusCreated)
	_, r = e.start(e.opB, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-b"}}})
	want(t, r, http.StatusCreated)
	want(t, e.do("POST", "/api/v1/tokens", e.admin, map[string]any{"name": "x", "role": "operator", "area_id": "b-1"}), http.StatusCreated)

	adminA := e.scopedAdmin("xa-a")
	r = e.do("GET", "/api/v1/audit", adminA, nil)
	want(t, r, http.StatusOK)
	var recs []loa.AuditRecord
	r.json(t, &recs)
	if len(recs) == 0 {
		t.Fatal("the admin of xa-a reads no records")
	}
	for _, rec := range recs {
		if rec.Actor != e.tokens[e.opA].ID || rec.Scope != "xa-a" {
			t.Errorf("the admin of xa-a reads %+v", rec)
		}
	}
	r = e.do("GET", "/api/v1/audit", e.admin, nil)
	r.json(t, &recs)
	if len(recs) < 4 {
		t.Errorf("the station admin reads %d records, want every one", len(recs))
	}
}
