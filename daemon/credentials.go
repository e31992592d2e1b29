package daemon

import (
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/station"
)

var _ api.CredentialService = (*station.CredentialService)(nil)

// credentials returns the credential service, with the embedded broker
// acting on every change when there is one.
func (m *Main) credentials() *station.CredentialService {
	cfg := station.CredentialConfig{DB: m.DB, Logger: m.Logger.With("component", "credentials")}
	if m.Broker != nil { // a nil *broker.Broker would be a non-nil interface
		cfg.Broker = m.Broker
	}
	return station.NewCredentialService(cfg)
}
