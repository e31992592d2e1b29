package api_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// The library is scoped: a message belongs to an area, the caller's
// scope and the areas above it are visible, only the area permission in
// scope writes; bad codes are refused and change nothing. Receivers fetch
// only library files, with their own credentials.
func TestStoredMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.server.Stored = station.NewStored(e.db, nil, nil, key, "", nil)
	e.server.Receivers = e.db
	w, err := e.db.NewBlob(store.MediaBlob)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	io.WriteString(w, "OggS not really, but bytes")
	hash, size, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.PutMedia(ctx, &loa.Media{ID: "m-bao", Name: "Bão", Hash: hash, Size: size, Frames: 50}); err != nil {
		t.Fatal(err)
	}

	put := func(secret, code string, body map[string]any) response {
		return e.do("PUT", "/api/v1/stored-messages/"+code, secret, body)
	}
	want(t, put(e.province, "12", map[string]any{"name": "Bão", "media_id": "m-bao", "category": "storm", "area_id": "hn"}), http.StatusOK)
	want(t, put(e.provA, "13", map[string]any{"name": "Sạt lở", "media_id": "m-bao"}), http.StatusOK) // default: its scope xa-a
	wantError(t, put(e.provA, "14", map[string]any{"name": "x", "media_id": "m-bao", "area_id": "hn"}), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, put(e.provA, "12", map[string]any{"name": "x", "media_id": "m-bao", "area_id": "xa-a"}), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, put(e.opA, "15", map[string]any{"name": "x", "media_id": "m-bao"}), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, put(e.admin, "1000", map[string]any{"name": "x", "media_id": "m-bao", "area_id": "hn"}), http.StatusBadRequest, loa.EINVALID)
	wantError(t, put(e.admin, "abc", map[string]any{"name": "x", "media_id": "m-bao", "area_id": "hn"}), http.StatusBadRequest, loa.EINVALID)
	wantError(t, put(e.admin, "16", map[string]any{"name": "x", "media_id": "m-bao", "area_id": "hn", "extra": 1}), http.StatusBadRequest, loa.EINVALID)
	wantError(t, put(e.admin, "16", map[string]any{"name": "x", "media_id": "nope", "area_id": "hn"}), http.StatusNotFound, loa.ENOTFOUND)

	list := func(secret string) (int64, []int) {
		var out struct {
			Version  int64                `json:"version"`
			Messages []*loa.StoredMessage `json:"messages"`
		}
		r := e.do("GET", "/api/v1/stored-messages", secret, nil)
		want(t, r, http.StatusOK)
		r.json(t, &out)
		var codes []int
		for _, m := range out.Messages {
			codes = append(codes, m.Code)
		}
		return out.Version, codes
	}
	for name, c := range map[string]struct {
		secret string
		codes  string
	}{
		"admin": {e.admin, "12,13"}, "operator of xa-a": {e.opA, "12,13"}, "operator of xa-b": {e.opB, "12"},
	} {
		v, codes := list(c.secret)
		var got []string
		for _, n := range codes {
			got = append(got, strconv.Itoa(n))
		}
		if v != 2 || strings.Join(got, ",") != c.codes {
			t.Errorf("%s sees version %d, codes %v; want 2, %s", name, v, codes, c.codes)
		}
	}

	// Downloads: device credentials, library files only.
	pw, err := e.db.ResetDeviceCredentials(ctx, "dev-a1")
	if err != nil {
		t.Fatal(err)
	}
	get := func(user, pass, sha string) response {
		req, _ := http.NewRequest("GET", e.srv.URL+"/cache/"+sha, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return e.send(req)
	}
	if r := get("dev-a1", pw, hash); r.status != http.StatusOK || string(r.body) != "OggS not really, but bytes" || r.header.Get("ETag") != `"`+hash+`"` {
		t.Errorf("download: %d %q %v", r.status, r.body, r.header)
	}
	wantError(t, get("", "", hash), http.StatusUnauthorized, loa.EUNAUTHORIZED)
	wantError(t, get("dev-a1", "wrong", hash), http.StatusUnauthorized, loa.EUNAUTHORIZED)
	wantError(t, get("dev-a1", pw, strings.Repeat("ab", 32)), http.StatusNotFound, loa.ENOTFOUND) // media m-1, not in the library

	wantError(t, e.do("DELETE", "/api/v1/stored-messages/12", e.provA, nil), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, e.do("DELETE", "/api/v1/stored-messages/13", e.opA, nil), http.StatusForbidden, loa.EFORBIDDEN)
	want(t, e.do("DELETE", "/api/v1/stored-messages/13", e.provA, nil), http.StatusNoContent)
	wantError(t, e.do("DELETE", "/api/v1/stored-messages/13", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND)
	if v, codes := list(e.admin); v != 3 || len(codes) != 1 {
		t.Errorf("after delete: version %d, codes %v", v, codes)
	}
	if acts := strings.Join(e.auditActions(), ","); !strings.Contains(acts, "stored.put") || !strings.Contains(acts, "stored.delete") {
		t.Errorf("audit %s", acts)
	}
}
