package loa

import (
	"context"
	"slices"
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
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	AreaID     string    `json:"area_id,omitempty"`     // scope; empty = everything
	CAPSenders []string  `json:"cap_senders,omitempty"` // the CAP senders it may send as (see MaySendCAPAs)
	Hash       string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by,omitempty"` // the token that made it
	ExpiresAt  time.Time `json:"expires_at,omitzero"`  // refused from then on; zero = never
	RevokedAt  time.Time `json:"revoked_at,omitzero"`  // refused from then on
}

// Usable reports why the token may not be used at now: revoked or
// expired; nil if it may.
func (t *Token) Usable(now time.Time) error {
	if !t.RevokedAt.IsZero() {
		return Errorf(EUNAUTHORIZED, "token %s was revoked", t.ID)
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Errorf(EUNAUTHORIZED, "token %s expired at %s", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// MaySendCAPAs reports whether the token may send CAP messages as sender:
// a station-wide admin as anyone, every other token only as the senders
// it was granted, so no token can take another's (sender, identifier)
// first and have the genuine message refused as a duplicate.
func (t *Token) MaySendCAPAs(sender string) bool {
	if t.Role == RoleAdmin && t.AreaID == "" {
		return true
	}
	return slices.Contains(t.CAPSenders, sender)
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
	Scope  string    `json:"scope,omitempty"` // the actor's area scope; empty: station-wide (an unscoped token, the system)
}

// TokenService issues, checks, lists and revokes API tokens.
type TokenService interface {
	// CreateToken stores t (hashed) and returns the secret, shown once.
	CreateToken(ctx context.Context, t *Token) (secret string, err error)
	// TokenBySecret returns the token for a secret; EUNAUTHORIZED if none,
	// or if it is revoked or expired.
	TokenBySecret(ctx context.Context, secret string) (*Token, error)
	Token(ctx context.Context, id string) (*Token, error) // ENOTFOUND if none
	Tokens(ctx context.Context) ([]*Token, error)         // every token, revoked ones too, by id
	// RevokeToken refuses the token from now on and returns it;
	// ECONFLICT if it is already revoked.
	RevokeToken(ctx context.Context, id string) (*Token, error)
}

// AuditService records who did what.
type AuditService interface {
	Audit(ctx context.Context, r AuditRecord) error
	AuditLog(ctx context.Context, limit int) ([]AuditRecord, error)
	// AuditLogWhere returns up to limit records keep accepts, newest
	// first; keep must not touch the store.
	AuditLogWhere(ctx context.Context, limit int, keep func(*AuditRecord) bool) ([]AuditRecord, error)
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
	MaySendCAPAs(sender string) error        // a CAP sender it was granted (Token.MaySendCAPAs); EFORBIDDEN otherwise
	Audit(action, object, detail string)
}
