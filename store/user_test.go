package store_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestUsersPasswordsAndSessionsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	seedAreas(t, db)
	if has, err := db.HasUsers(ctx); err != nil || has {
		t.Fatalf("HasUsers on an empty db = %v, %v", has, err)
	}
	const pw = "một mật khẩu dài"
	u := &loa.User{Username: "lan", Role: loa.RoleOperator, AreaID: "qn.tk"}
	if err := db.CreateUser(ctx, u, pw); err != nil {
		t.Fatal(err)
	}
	if u.Name != "lan" || u.CreatedAt.IsZero() {
		t.Errorf("after create: %+v", u)
	}
	if err := db.CreateUser(ctx, &loa.User{Username: "lan", Role: loa.RoleOperator}, pw); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("second lan: %v", err)
	}
	if err := db.CreateUser(ctx, &loa.User{Username: "x2", Role: loa.RoleOperator, AreaID: "nowhere"}, pw); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("scope nowhere: %v", err)
	}

	now := time.Date(2027, 3, 1, 8, 0, 0, 0, time.UTC)
	id, csrf, err := db.StartSession(ctx, "lan", now)
	if err != nil || len(id) != 43 || len(csrf) != 43 || id == csrf {
		t.Fatalf("StartSession = %q, %q, %v", id, csrf, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Nothing stored says the password or the session id.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pw) || strings.Contains(string(raw), id) {
		t.Error("the database file holds a password or a session id in clear")
	}

	db = mustOpenPath(t, path)
	got, gotCSRF, err := db.SessionUser(ctx, id, now.Add(time.Hour))
	if err != nil || got.Username != "lan" || gotCSRF != csrf {
		t.Fatalf("after restart: %+v %q %v", got, gotCSRF, err)
	}
	if _, _, err := db.SessionUser(ctx, id+"x", now); loa.ErrorCode(err) != loa.EUNAUTHENTICATED {
		t.Errorf("unknown session: %v", err)
	}
	if got, err := db.CheckPassword(ctx, "lan", pw); err != nil || got.Username != "lan" {
		t.Errorf("right password: %v", err)
	}
	for _, c := range [][2]string{{"lan", pw + " "}, {"lan", ""}, {"nobody", pw}, {strings.Repeat("a", 100), pw}, {"lan", strings.Repeat("x", 1000)}} {
		if _, err := db.CheckPassword(ctx, c[0], c[1]); loa.ErrorCode(err) != loa.EUNAUTHORIZED {
			t.Errorf("CheckPassword(%q, …): %v, want unauthorized", c[0], err)
		}
	}
	users, err := db.Users(ctx)
	if err != nil || len(users) != 1 {
		t.Fatal(users, err)
	}
	if b, _ := json.Marshal(users); strings.Contains(string(b), "argon2id") {
		t.Errorf("a user's JSON carries its hash: %s", b)
	}

	if err := db.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SessionUser(ctx, id, now.Add(time.Hour)); loa.ErrorCode(err) != loa.EUNAUTHENTICATED {
		t.Errorf("ended session: %v", err)
	}
}

func TestLastStationAdminStays(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	pw := "một mật khẩu dài"
	for _, u := range []*loa.User{
		{Username: "root", Role: loa.RoleAdmin},
		{Username: "tk-admin", Role: loa.RoleAdmin, AreaID: "qn.tk"}, // scoped: not a station admin
	} {
		if err := db.CreateUser(ctx, u, pw); err != nil {
			t.Fatal(err)
		}
	}
	for name, change := range map[string]func(*loa.User) error{
		"disable": func(u *loa.User) error { u.Disabled = true; return nil },
		"role":    func(u *loa.User) error { u.Role = loa.RoleProvince; return nil },
		"scope":   func(u *loa.User) error { u.AreaID = "qn"; return nil },
	} {
		if _, err := db.UpdateUser(ctx, "root", change); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Errorf("%s of the last admin: %v", name, err)
		}
	}
	if u, err := db.User(ctx, "root"); err != nil || !u.StationAdmin() {
		t.Errorf("root after refusals: %+v %v", u, err)
	}
	// The username and stamps are not the change's to alter.
	u, err := db.UpdateUser(ctx, "tk-admin", func(u *loa.User) error { u.Username = "other"; u.Name = "Quản trị Tam Kỳ"; return nil })
	if err != nil || u.Username != "tk-admin" || u.Name != "Quản trị Tam Kỳ" {
		t.Errorf("update: %+v %v", u, err)
	}
	// Disabling ends the user's sessions.
	now := time.Date(2027, 3, 1, 8, 0, 0, 0, time.UTC)
	id, _, err := db.StartSession(ctx, "tk-admin", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateUser(ctx, "tk-admin", func(u *loa.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SessionUser(ctx, id, now); loa.ErrorCode(err) != loa.EUNAUTHENTICATED {
		t.Errorf("session of a disabled user: %v", err)
	}
	// A scoped admin keeps its area from being deleted.
	if err := db.CreateUser(ctx, &loa.User{Username: "cluster-op", Role: loa.RoleOperator, AreaID: "qn.tk.1"}, pw); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteArea(ctx, "qn.tk.1"); loa.ErrorCode(err) != loa.ECONFLICT || !strings.Contains(loa.ErrorMessage(err), "users") {
		t.Errorf("delete the area of a user's scope: %v", err)
	}
}
