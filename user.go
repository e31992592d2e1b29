package loa

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Roles, from most to least powerful.
const (
	RoleAdmin      = "admin"      // everything
	RoleProvince   = "province"   // provincial staff: alerts, sessions, devices in scope
	RoleOperator   = "operator"   // commune operator: media and sessions in scope
	RoleTechnician = "technician" // devices in scope: view, provision, command
	RoleApprover   = "approver"   // lãnh đạo xã/tỉnh: views like an operator, approves drafts in scope
)

// Roles lists every role, for messages and validation.
var Roles = []string{RoleAdmin, RoleProvince, RoleOperator, RoleTechnician, RoleApprover}

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

	// ClientCertSHA256 binds the token to a TLS client certificate (its
	// CertSHA256): a caller presenting that certificate over HTTPS is this
	// token without a secret (a national controller), and the secret alone
	// is refused without it.
	ClientCertSHA256 string `json:"client_cert_sha256,omitempty"`
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
		return action != ActionManageTokens && action != ActionFirmware && action != ActionManageUsers && action != ActionApprove && action != ActionFeed
	case RoleOperator:
		return action == ActionRead || action == ActionMedia || action == ActionSession
	case RoleTechnician:
		return action == ActionRead || action == ActionDevice || action == ActionFirmware
	case RoleApprover:
		return action == ActionRead || action == ActionApprove
	case RoleFeed:
		return action == ActionFeed
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
	ActionManageUsers  = "users"   // people who sign in: admins only
	ActionApprove      = "approve" // approve drafts in areas that need approval
)

// Actions lists every action, for the permissions a caller is told it has.
var Actions = []string{ActionRead, ActionMedia, ActionSession, ActionDevice, ActionArea,
	ActionFirmware, ActionManageTokens, ActionManageUsers, ActionApprove, ActionFeed}

// Permissions returns the actions the role may perform, in Actions order.
func (t *Token) Permissions() []string {
	var out []string
	for _, a := range Actions {
		if t.Can(a) {
			out = append(out, a)
		}
	}
	return out
}

// ValidRole reports whether r names a role.
func ValidRole(r string) bool {
	return slices.Contains(Roles, r)
}

// RoleList is the roles as a message lists them: "admin, province, …".
func RoleList() string { return strings.Join(Roles, ", ") }

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

// User is a person who signs in to the console with a username and a
// password. Only the password's argon2id hash is stored (by the store);
// it is never logged or answered.
type User struct {
	Username string `json:"username"`
	Name     string `json:"name"` // display name
	Role     string `json:"role"`
	AreaID   string `json:"area_id,omitempty"` // scope; empty = everything
	Disabled bool   `json:"disabled"`
	// Email and Phone (E.164) are where notifications reach the person
	// (notify.go); both optional.
	Email     string    `json:"email,omitempty"`
	Phone     string    `json:"phone,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	CreatedBy string    `json:"created_by,omitempty"` // the actor that made it
}

// UserActorPrefix starts the actor id of a signed-in user (in the audit
// log, CreatedBy, StoppedBy), so it never collides with a token id.
const UserActorPrefix = "user:"

// Principal is the identity a user's sign-in session acts as: a token
// with the user's role and scope, so every authority rule applies to
// people exactly as to tokens.
func (u *User) Principal() *Token {
	return &Token{ID: UserActorPrefix + u.Username, Name: u.Name, Role: u.Role, AreaID: u.AreaID, CreatedAt: u.CreatedAt}
}

// StationAdmin reports whether u is an enabled admin of the whole station.
func (u *User) StationAdmin() bool { return !u.Disabled && u.Role == RoleAdmin && u.AreaID == "" }

// Bounds of sign-in.
const (
	MinPassword    = 10  // characters
	MaxPassword    = 256 // bytes; longer ones are not hashed
	MaxUsername    = 32
	SessionIdle    = 12 * time.Hour     // a sign-in session unused this long ends
	SessionMaxAge  = 7 * 24 * time.Hour // and every one ends this long after sign-in
	SessionIDBytes = 32
)

// ValidateUsername checks a username: 2–32 of a-z, 0-9, '.', '_' and '-',
// starting with a letter or digit.
func ValidateUsername(field, name string) error {
	if len(name) < 2 || len(name) > MaxUsername {
		return Errorf(EINVALID, "%s: 2–%d characters", field, MaxUsername)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_' || c == '.')
		if !ok {
			return Errorf(EINVALID, "%s: %q has %q; use a-z, 0-9, '.', '_' or '-', starting with a letter or digit", field, name, c)
		}
	}
	return nil
}

// ValidatePassword checks a new password for username: long enough, not
// too long to hash, not the username itself.
func ValidatePassword(field, password, username string) error {
	if utf8.RuneCountInString(password) < MinPassword {
		return Errorf(EINVALID, "%s: at least %d characters", field, MinPassword)
	}
	if len(password) > MaxPassword {
		return Errorf(EINVALID, "%s: at most %d bytes", field, MaxPassword)
	}
	if strings.EqualFold(strings.TrimSpace(password), username) {
		return Errorf(EINVALID, "%s: must not be the username", field)
	}
	return nil
}

// UserService keeps the people who sign in, their passwords and their
// sign-in sessions.
type UserService interface {
	// CreateUser stores u with password (hashed); ECONFLICT if the
	// username exists.
	CreateUser(ctx context.Context, u *User, password string) error
	User(ctx context.Context, username string) (*User, error) // ENOTFOUND if none
	Users(ctx context.Context) ([]*User, error)               // by username
	// UpdateUser applies change to the user in one transaction. ECONFLICT
	// if no enabled station-wide admin would be left. Disabling a user
	// ends its sessions.
	UpdateUser(ctx context.Context, username string, change func(*User) error) (*User, error)
	// SetPassword replaces the user's password and ends its sessions.
	SetPassword(ctx context.Context, username, password string) error
	// CheckPassword returns the user if password is its own; EUNAUTHORIZED
	// otherwise, after the same work for an unknown user as for a known one.
	// A disabled user is EFORBIDDEN, only once the password is right.
	CheckPassword(ctx context.Context, username, password string) (*User, error)
	// StartSession starts a sign-in session for username at now and
	// returns its secret id and CSRF token.
	StartSession(ctx context.Context, username string, now time.Time) (id, csrf string, err error)
	// SessionUser returns the user of session id at now and its CSRF token,
	// marking it used; EUNAUTHENTICATED if it is unknown, ended, idle past
	// SessionIdle, older than SessionMaxAge or its user disabled.
	SessionUser(ctx context.Context, id string, now time.Time) (u *User, csrf string, err error)
	EndSession(ctx context.Context, id string) error // ending an unknown one is no error
}
