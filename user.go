package loa

import (
	"context"
	"time"
)

// Roles, from most to least powerful.
const (
	RoleAdmin      = "admin"      // everything
	RoleProvince   = "province"   // provincial staff: alerts, sessions, devices in scope
	RoleOperator   = "operator"   // commune operator: media and sessions in scope
	RoleTechnician = "technician" // devices in scope: view, provision, command
)

// Token is an API bearer token. Only its SHA-256 is stored; the secret is
// shown once, when it is created.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	AreaID    string    `json:"area_id,omitempty"` // scope; empty = everything
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Can reports whether the role may perform action.
func (t *Token) Can(action string) bool {
	switch t.Role {
	case RoleAdmin:
		return true
	case RoleProvince:
		return action != ActionManageTokens && action != ActionFirmware
	case RoleOperator:
		return action == ActionRead || action == ActionMedia || action == ActionSession
	case RoleTechnician:
		return action == ActionRead || action == ActionDevice || action == ActionFirmware
	}
	return false
}

// Actions a role may be allowed.
const (
	ActionRead         = "read"
	ActionMedia        = "media"    // upload media
	ActionSession      = "session"  // start and stop sessions
	ActionDevice       = "device"   // provision and command devices
	ActionArea         = "area"     // create areas
	ActionFirmware     = "firmware" // upload images, run rollouts: technicians and admins
	ActionManageTokens = "tokens"
)

// ValidRole reports whether r names a role.
func ValidRole(r string) bool {
	return r == RoleAdmin || r == RoleProvince || r == RoleOperator || r == RoleTechnician
}

// AuditRecord is one line of the audit log: who did what to what.
type AuditRecord struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"` // token id, or "system"
	Action string    `json:"action"`
	Object string    `json:"object"`
	Detail string    `json:"detail,omitempty"`
}

// TokenService issues and checks API tokens.
type TokenService interface {
	// CreateToken stores t (hashed) and returns the secret, shown once.
	CreateToken(ctx context.Context, t *Token) (secret string, err error)
	// TokenBySecret returns the token for a secret, EUNAUTHORIZED if none.
	TokenBySecret(ctx context.Context, secret string) (*Token, error)
}

// AuditService records who did what.
type AuditService interface {
	Audit(ctx context.Context, r AuditRecord) error
	AuditLog(ctx context.Context, limit int) ([]AuditRecord, error)
}

// Caller is who asks a service to act, as the API's authority rules see
// them. A service that acts on a caller's behalf beyond one call (CAP
// ingest sends, imports and cancels) checks each step through it and
// records each in the audit log.
type Caller interface {
	ID() string                              // the token: CreatedBy of what it makes
	AreaInScope(areaID string) (bool, error) // within the caller's scope
	TargetsVisible(t Targets) (bool, error)  // every target within the scope
	MaySend(a *Alert) error                  // its level and targets; EFORBIDDEN otherwise
	Audit(action, object, detail string)
}
