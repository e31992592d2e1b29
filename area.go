package loa

import (
	"context"
	"time"
)

// Area kinds, from the top of the tree down.
const (
	AreaProvince = "province"
	AreaCommune  = "commune"
	AreaCluster  = "cluster" // a village cluster (cụm loa)
)

// Area is a node in the administrative tree province → commune → cluster.
// Devices belong to an area; targets and token scopes name areas.
type Area struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Code     string `json:"code,omitempty"`  // administrative code (mã đơn vị hành chính)
	Tests    bool   `json:"tests,omitempty"` // marked for tests: test and exercise alerts sound here (and in its descendants), nowhere else
	// NeedsApproval: an operator's new schedule, playlist or upload for
	// this area (or its descendants) waits as a Draft for an approver.
	NeedsApproval bool      `json:"needs_approval,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// childKind is the kind an area's child must have.
var childKind = map[string]string{AreaProvince: AreaCommune, AreaCommune: AreaCluster}

// Validate checks the area's own fields. The parent's existence and kind
// are checked by ValidateParent, by whoever can look the parent up.
func (a *Area) Validate() error {
	if err := ValidateID("id", a.ID); err != nil {
		return err
	}
	if err := ValidateName("name", a.Name, true); err != nil {
		return err
	}
	switch a.Kind {
	case AreaProvince:
		if a.ParentID != "" {
			return Errorf(EINVALID, "parent_id: a province has no parent")
		}
	case AreaCommune, AreaCluster:
		if a.ParentID == "" {
			return Errorf(EINVALID, "parent_id: a %s needs a parent", a.Kind)
		}
	default:
		return Errorf(EINVALID, "kind: must be province, commune or cluster, not %q", a.Kind)
	}
	return nil
}

// ValidateParent checks that parent may hold a as a child.
func (a *Area) ValidateParent(parent *Area) error {
	if childKind[parent.Kind] != a.Kind {
		return Errorf(EINVALID, "parent_id: a %s cannot hold a %s", parent.Kind, a.Kind)
	}
	return nil
}

// AreaTree answers ancestry questions over a snapshot of all areas.
type AreaTree map[string]*Area

// NewAreaTree indexes areas by id.
func NewAreaTree(areas []*Area) AreaTree {
	t := make(AreaTree, len(areas))
	for _, a := range areas {
		t[a.ID] = a
	}
	return t
}

// Within reports whether area id is scope or one of its descendants.
// An empty scope covers everything.
func (t AreaTree) Within(id, scope string) bool {
	if scope == "" {
		return true
	}
	for depth := 0; id != "" && depth < 16; depth++ {
		if id == scope {
			return true
		}
		a := t[id]
		if a == nil {
			return false
		}
		id = a.ParentID
	}
	return false
}

// Common returns the deepest area that holds every one of ids ("" when
// only the whole station does, or ids is empty).
func (t AreaTree) Common(ids ...string) string {
	if len(ids) == 0 {
		return ""
	}
	common := ids[0]
	for _, id := range ids[1:] {
		for common != "" && !t.Within(id, common) {
			a := t[common]
			if a == nil {
				return ""
			}
			common = a.ParentID
		}
	}
	return common
}

// NeedsApproval reports whether area id or one of its ancestors is
// marked as needing approval.
func (t AreaTree) NeedsApproval(id string) bool {
	for depth := 0; id != "" && depth < 16; depth++ {
		a := t[id]
		if a == nil {
			return false
		}
		if a.NeedsApproval {
			return true
		}
		id = a.ParentID
	}
	return false
}

// ValidateID checks an identifier chosen by a user: 1–64 bytes of
// [a-z0-9-_.], so it is safe in MQTT topics, file names and URLs.
func ValidateID(field, id string) error {
	if id == "" || len(id) > 64 {
		return Errorf(EINVALID, "%s: required, 1–64 characters", field)
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return Errorf(EINVALID, "%s: %q has %q; use a-z, 0-9, '-', '_' or '.'", field, id, c)
		}
	}
	return nil
}

// AreaService keeps the area tree.
type AreaService interface {
	CreateArea(ctx context.Context, a *Area) error // sets CreatedAt; ECONFLICT if the id exists
	Area(ctx context.Context, id string) (*Area, error)
	Areas(ctx context.Context) ([]*Area, error)
}
