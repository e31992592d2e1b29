package store_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

func TestCreateToken(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	if has, err := db.HasTokens(ctx); err != nil || has {
		t.Fatalf("HasTokens on empty db = %v, %v", has, err)
	}

	tok := &loa.Token{Name: "Tam Kỳ operator", Role: loa.RoleOperator, AreaID: "qn.tk"}
	secret, err := db.CreateToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "loa_") || len(secret) < 4+50 {
		t.Errorf("secret %q: want loa_ and 256 random bits", secret)
	}
	if tok.ID == "" || loa.ValidateID("id", tok.ID) != nil {
		t.Errorf("generated id %q", tok.ID)
	}
	if tok.CreatedAt.IsZero() || len(tok.Hash) != 64 || strings.Contains(tok.Hash, secret) {
		t.Errorf("token after create = %+v", tok)
	}
	if has, err := db.HasTokens(ctx); err != nil || !has {
		t.Fatalf("HasTokens = %v, %v; want true", has, err)
	}

	got, err := db.TokenBySecret(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tok) {
		t.Errorf("TokenBySecret = %+v, want %+v", got, tok)
	}

	secret2, err := db.CreateToken(ctx, &loa.Token{ID: "admin", Name: "Admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if secret2 == secret {
		t.Fatal("two tokens got the same secret")
	}
	if got, err := db.TokenBySecret(ctx, secret2); err != nil || got.ID != "admin" {
		t.Fatalf("TokenBySecret(second) = %+v, %v", got, err)
	}

	ts, err := db.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].ID != "admin" || ts[1].ID != tok.ID || ts[1].Hash != tok.Hash {
		t.Fatalf("Tokens = %+v", ts)
	}
}

func TestTokenBySecret_Unknown(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	secret, err := db.CreateToken(ctx, &loa.Token{Name: "a", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "loa_", secret + "x", secret[:len(secret)-1], strings.TrimPrefix(secret, "loa_")} {
		_, err := db.TokenBySecret(ctx, bad)
		wantCode(t, err, loa.EUNAUTHORIZED)
	}
}

func TestCreateToken_Errors(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	if _, err := db.CreateToken(ctx, &loa.Token{ID: "t1", Role: loa.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		tok   loa.Token
		code  string
		field string
	}{
		{"bad role", loa.Token{Role: "root"}, loa.EINVALID, "role"},
		{"no role", loa.Token{}, loa.EINVALID, "role"},
		{"bad id", loa.Token{ID: "T 1", Role: loa.RoleAdmin}, loa.EINVALID, "id"},
		{"missing scope", loa.Token{Role: loa.RoleOperator, AreaID: "nowhere"}, loa.ENOTFOUND, "area_id"},
		{"duplicate id", loa.Token{ID: "t1", Role: loa.RoleAdmin}, loa.ECONFLICT, "t1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.tok
			secret, err := db.CreateToken(ctx, &tok)
			wantCode(t, err, tc.code)
			wantMessage(t, err, tc.field)
			if secret != "" {
				t.Errorf("secret returned with an error")
			}
		})
	}
	if ts, _ := db.Tokens(ctx); len(ts) != 1 {
		t.Fatalf("refused tokens were stored: %+v", ts)
	}
}

func TestTokens_ReturnsCopies(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	secret, err := db.CreateToken(ctx, &loa.Token{ID: "t1", Name: "one", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := db.Tokens(ctx)
	ts[0].Role = loa.RoleOperator
	got, _ := db.TokenBySecret(ctx, secret)
	got.Name = "changed"
	if again, _ := db.TokenBySecret(ctx, secret); again.Role != loa.RoleAdmin || again.Name != "one" {
		t.Fatalf("mutating a returned token changed the db: %+v", again)
	}
}

func TestCreateToken_FailureLeavesArgument(t *testing.T) {
	db := mustOpen(t)
	tok := &loa.Token{Role: "root"}
	if _, err := db.CreateToken(context.Background(), tok); err == nil {
		t.Fatal("bad role accepted")
	}
	if tok.ID != "" || !tok.CreatedAt.IsZero() || tok.Hash != "" {
		t.Fatalf("refused CreateToken modified its argument: %+v", tok)
	}
}

// TestTokenExpiryAndRevocation: a token works until its expiry and not
// from then on; a revoked one is refused at once and stays listed.
func TestTokenExpiryAndRevocation(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tok := &loa.Token{Name: "tạm", Role: loa.RoleOperator, ExpiresAt: now.Add(time.Hour)}
	secret, err := db.CreateToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenBySecret(ctx, secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := db.TokenBySecret(ctx, secret); loa.ErrorCode(err) != loa.EUNAUTHORIZED || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at expiry: %v, want unauthorized: expired", err)
	}

	tok2 := &loa.Token{Name: "bị thu hồi", Role: loa.RoleOperator}
	secret2, err := db.CreateToken(ctx, tok2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeToken(ctx, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenBySecret(ctx, secret2); loa.ErrorCode(err) != loa.EUNAUTHORIZED {
		t.Fatalf("revoked: %v, want unauthorized", err)
	}
	if _, err := db.RevokeToken(ctx, tok2.ID); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("revoked twice: %v, want conflict", err)
	}
	if _, err := db.RevokeToken(ctx, "tok-none"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("revoke unknown: %v, want not found", err)
	}
	got, err := db.Token(ctx, tok2.ID)
	if err != nil || got.RevokedAt.IsZero() {
		t.Errorf("Token(revoked) = %+v, %v", got, err)
	}
}
