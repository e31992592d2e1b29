package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/store"
)

type backupFunc func(ctx context.Context, w io.Writer) error

func (f backupFunc) WriteBackup(ctx context.Context, w io.Writer) error { return f(ctx, w) }

func TestBackupRoute(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateArea(ctx, &loa.Area{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	secret := func(role, area string) string {
		s, err := db.CreateToken(ctx, &loa.Token{Name: role + area, Role: role, AreaID: area})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin, scopedAdmin, province := secret(loa.RoleAdmin, ""), secret(loa.RoleAdmin, "hn"), secret(loa.RoleProvince, "")
	fail := false
	s := &api.Server{Areas: db, Tokens: db, Audit: db, Backup: backupFunc(func(ctx context.Context, w io.Writer) error {
		if fail {
			w.Write([]byte("partial"))
			return errors.New("disk gone")
		}
		_, err := db.WriteBackup(ctx, w, nil)
		return err
	})}
	srv := httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(srv.Close)
	get := func(secret string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/backup", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := srv.Client().Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}

	res, body, err := get(admin)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("admin: %v, %v", res, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/gzip" {
		t.Errorf("Content-Type %q", ct)
	}
	man, err := store.VerifyArchive(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if man.Files[0].Name != store.DBFileName {
		t.Fatalf("manifest %+v", man)
	}
	for _, sec := range []string{scopedAdmin, province} {
		if res, _, err := get(sec); err != nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("scoped admin or province: %v, %v; want 403", res.StatusCode, err)
		}
	}

	// A failure midway must not look like a whole archive.
	fail = true
	if _, body, err := get(admin); err == nil {
		if _, verr := store.VerifyArchive(bytes.NewReader(body)); verr == nil {
			t.Fatal("a failed backup reached the client as a whole archive")
		}
	}
}
