package loa_test

import (
	"slices"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestApproverRole(t *testing.T) {
	ap := &loa.Token{Role: loa.RoleApprover}
	if got := ap.Permissions(); !slices.Equal(got, []string{loa.ActionRead, loa.ActionApprove}) {
		t.Errorf("approver may %v", got)
	}
	for _, role := range []string{loa.RoleProvince, loa.RoleOperator, loa.RoleTechnician} {
		tok := &loa.Token{Role: role}
		if tok.Can(loa.ActionApprove) || tok.Can(loa.ActionManageUsers) {
			t.Errorf("%s may approve or manage users", role)
		}
	}
	if admin := (&loa.Token{Role: loa.RoleAdmin}); !admin.Can(loa.ActionApprove) || !admin.Can(loa.ActionManageUsers) {
		t.Error("admin may not approve or manage users")
	}
	if !loa.ValidRole(loa.RoleApprover) || loa.ValidRole("king") {
		t.Error("ValidRole")
	}
}

func TestUsernamesAndPasswords(t *testing.T) {
	for _, ok := range []string{"lan", "nguyen.van-an_2", "a1"} {
		if err := loa.ValidateUsername("username", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a", "Lan", "lan an", "-lan", "lân", "user:x", string(make([]byte, 33))} {
		if loa.ValidateUsername("username", bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, c := range []struct {
		pw, user string
		ok       bool
	}{
		{"mười ký tự", "lan", true}, // ten characters, more bytes
		{"chín ký t", "lan", false},
		{"nguyenvanan", "nguyenvanan", false},
		{"NguyenVanAn", "nguyenvanan", false},
		{string(make([]byte, 300)), "lan", false},
	} {
		if err := loa.ValidatePassword("password", c.pw, c.user); (err == nil) != c.ok {
			t.Errorf("%q for %q: %v", c.pw, c.user, err)
		}
	}
	u := &loa.User{Username: "lan", Name: "Lan", Role: loa.RoleOperator, AreaID: "xa-a"}
	if p := u.Principal(); p.ID != "user:lan" || p.Role != u.Role || p.AreaID != u.AreaID {
		t.Errorf("principal %+v", p)
	}
}
