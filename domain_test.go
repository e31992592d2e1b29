package loa_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestPriorityPreempts(t *testing.T) {
	cases := []struct {
		next, cur loa.Priority
		want      bool
		band      string
	}{
		{200, 64, true, loa.BandPriority},
		{64, 200, false, loa.BandNormal},
		{64, 64, false, loa.BandNormal},     // equal: the playing one keeps it
		{130, 130, false, loa.BandPriority}, // also in the priority band
		{230, 230, true, loa.BandEmergency}, // emergency: the newest wins
		{10, 0, true, loa.BandBackground},
		{223, 224, false, loa.BandPriority},
	}
	for _, c := range cases {
		if got := c.next.Preempts(c.cur); got != c.want {
			t.Errorf("%d.Preempts(%d) = %v, want %v", c.next, c.cur, got, c.want)
		}
		if got := c.next.Band(); got != c.band {
			t.Errorf("%d.Band() = %q, want %q", c.next, got, c.band)
		}
	}
}

func TestAreaTreeWithin(t *testing.T) {
	tree := loa.NewAreaTree([]*loa.Area{
		{ID: "p", Kind: loa.AreaProvince},
		{ID: "a", ParentID: "p", Kind: loa.AreaCommune},
		{ID: "b", ParentID: "p", Kind: loa.AreaCommune},
		{ID: "a1", ParentID: "a", Kind: loa.AreaCluster},
	})
	for _, c := range []struct {
		id, scope string
		want      bool
	}{
		{"a1", "a", true}, {"a1", "p", true}, {"a1", "", true}, {"a", "a", true},
		{"a1", "b", false}, {"b", "a", false}, {"p", "a", false}, {"zz", "p", false},
	} {
		if got := tree.Within(c.id, c.scope); got != c.want {
			t.Errorf("Within(%q, %q) = %v, want %v", c.id, c.scope, got, c.want)
		}
	}
	for _, c := range []struct {
		ids  []string
		want string
	}{
		{nil, ""}, {[]string{"a1"}, "a1"}, {[]string{"a1", "a"}, "a"}, {[]string{"a", "a1"}, "a"},
		{[]string{"a1", "b"}, "p"}, {[]string{"b", "a1", "a"}, "p"}, {[]string{"a1", "zz"}, ""},
	} {
		if got := tree.Common(c.ids...); got != c.want {
			t.Errorf("Common(%q) = %q, want %q", c.ids, got, c.want)
		}
	}
}

func TestValidation(t *testing.T) {
	bad := []struct {
		name string
		err  error
	}{
		{"area without kind", (&loa.Area{ID: "x", Name: "X"}).Validate()},
		{"commune without parent", (&loa.Area{ID: "x", Name: "X", Kind: loa.AreaCommune}).Validate()},
		{"province with parent", (&loa.Area{ID: "x", Name: "X", Kind: loa.AreaProvince, ParentID: "p"}).Validate()},
		{"upper-case id", (&loa.Area{ID: "X", Name: "X", Kind: loa.AreaProvince}).Validate()},
		{"topic wildcard id", (&loa.Device{ID: "a/+", AreaID: "x"}).Validate()},
		{"latitude", (&loa.Device{ID: "d", AreaID: "x", Lat: 91}).Validate()},
		{"session without targets", (&loa.Session{MediaID: "m"}).Validate()},
		{"session without media", (&loa.Session{Targets: loa.Targets{Areas: []string{"a"}}}).Validate()},
	}
	for _, b := range bad {
		if loa.ErrorCode(b.err) != loa.EINVALID {
			t.Errorf("%s: got %v, want an %s error", b.name, b.err, loa.EINVALID)
		}
	}
	ok := (&loa.Area{ID: "xa-an-binh", Name: "Xã An Bình", Kind: loa.AreaCommune, ParentID: "p"}).Validate()
	if ok != nil {
		t.Errorf("valid commune: %v", ok)
	}
	parent := &loa.Area{ID: "c", Kind: loa.AreaCluster}
	if err := (&loa.Area{ID: "x", Kind: loa.AreaCommune}).ValidateParent(parent); err == nil {
		t.Error("a cluster accepted a commune as its child")
	}
}

func TestErrorCodes(t *testing.T) {
	e := loa.Errorf(loa.ENOTFOUND, "no device %q", "d1")
	wrapped := fmt.Errorf("lookup: %w", e)
	if loa.ErrorCode(wrapped) != loa.ENOTFOUND || loa.ErrorMessage(wrapped) != `no device "d1"` {
		t.Errorf("wrapped error lost its code or message: %q %q", loa.ErrorCode(wrapped), loa.ErrorMessage(wrapped))
	}
	plain := errors.New("disk on fire")
	if loa.ErrorCode(plain) != loa.EINTERNAL || loa.ErrorMessage(plain) != "internal error" {
		t.Error("a plain error must map to internal with a generic message")
	}
	if loa.ErrorCode(nil) != "" {
		t.Error("nil error has a code")
	}
}
