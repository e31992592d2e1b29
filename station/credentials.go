package station

import (
	"context"
	"log/slog"

	"github.com/loa-broadcast/loa/store"
)

// ClientDisconnector drops every connection a device holds to the broker
// and refuses it until it authenticates again (broker.Broker).
type ClientDisconnector interface {
	Disconnect(deviceID string)
}

// CredentialService changes device credentials in the store, then has the
// embedded broker drop the device's connections, so the change takes
// effect at once: the device must come back with the new password, or
// cannot come back. With an external broker (no Broker) it changes only
// the store and says the broker is not enforced.
type CredentialService struct {
	db     *store.DB
	broker ClientDisconnector // nil with an external broker
	logger *slog.Logger
}

// CredentialConfig configures a CredentialService.
type CredentialConfig struct {
	DB     *store.DB
	Broker ClientDisconnector // nil with an external broker
	Logger *slog.Logger
}

// NewCredentialService returns the service.
func NewCredentialService(cfg CredentialConfig) *CredentialService {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &CredentialService{db: cfg.DB, broker: cfg.Broker, logger: cfg.Logger}
}

// RotateCredentials gives device id a new password and returns it;
// enforced says whether the broker dropped the device's connections.
func (c *CredentialService) RotateCredentials(ctx context.Context, id string) (password string, enforced bool, err error) {
	pw, err := c.db.ResetDeviceCredentials(ctx, id)
	if err != nil {
		return "", false, err
	}
	c.logger.Info("device credentials rotated", "device", id, "enforced", c.broker != nil)
	if c.broker == nil {
		return pw, false, nil
	}
	c.broker.Disconnect(id) // after the store: a reconnect is checked against the new password
	return pw, true, nil
}

// RevokeCredentials leaves device id with no password that works;
// enforced says whether the broker dropped the device's connections.
func (c *CredentialService) RevokeCredentials(ctx context.Context, id string) (enforced bool, err error) {
	if _, err := c.db.RevokeDeviceCredentials(ctx, id); err != nil {
		return false, err
	}
	c.logger.Info("device credentials revoked", "device", id, "enforced", c.broker != nil)
	if c.broker == nil {
		return false, nil
	}
	c.broker.Disconnect(id)
	return true, nil
}
