package loa

import (
	"context"
	"io"
	"net/netip"
)

// The services below are the contracts the HTTP API consumes. store
// implements the persistence ones; cmd/loa composes the others (media
// import, sessions) from store, broadcast and devices.

// AreaService keeps the area tree.
type AreaService interface {
	CreateArea(ctx context.Context, a *Area) error // sets CreatedAt; ECONFLICT if the id exists
	Area(ctx context.Context, id string) (*Area, error)
	Areas(ctx context.Context) ([]*Area, error)
}

// DeviceService keeps the device registry and its credentials.
type DeviceService interface {
	// CreateDevice registers d and returns its MQTT password, which is
	// stored hashed and cannot be read back.
	CreateDevice(ctx context.Context, d *Device) (password string, err error)
	Device(ctx context.Context, id string) (*Device, error)
	Devices(ctx context.Context) ([]*Device, error)
}

// PresenceService reports live device state.
type PresenceService interface {
	DeviceState(id string) (DeviceState, bool)
}

// MediaService imports and lists media.
type MediaService interface {
	// ImportMedia decodes an upload, normalises and encodes it to Ogg Opus
	// and stores it. Bad input is EINVALID/EUNSUPPORTED/ETOOLARGE and
	// stores nothing.
	ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*Media, error)
	Media(ctx context.Context, id string) (*Media, error)
	MediaList(ctx context.Context) ([]*Media, error)
}

// SessionService starts and stops sessions.
type SessionService interface {
	// StartSession resolves s.Targets, persists s and starts streaming. It
	// fills ID, SSRC, Devices, State and StartedAt.
	StartSession(ctx context.Context, s *Session) error
	StopSession(ctx context.Context, id, reason string) error
	Session(ctx context.Context, id string) (*Session, error)
	Sessions(ctx context.Context) ([]*Session, error)
	// SessionSDP adds dest as a static receiver of the session and returns
	// the SDP a third-party receiver listening at dest can play.
	SessionSDP(ctx context.Context, id string, dest netip.AddrPort) (string, error)
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
