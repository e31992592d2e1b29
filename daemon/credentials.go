package daemon

import (
	"context"
	"log/slog"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/store"
)

// credentialService changes device credentials in the store, then has the
// embedded broker drop the device's connections, so the change takes
// effect at once: the device must come back with the new password, or
// cannot come back. With an external broker (nil) it changes only the
// store and says the broker is not enforced.
type credentialService struct {
	db     *store.DB
	broker *broker.Broker // nil with an external broker
	logger *slog.Logger
}

var _ api.CredentialService = credentialService{}

func (c credentialService) RotateCredentials(ctx context.Context, id string) (string, bool, error) {
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

func (c credentialService) RevokeCredentials(ctx context.Context, id string) (bool, error) {
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
