package daemon

import (
	"fmt"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/station"
)

// startNational makes this a national controller under -national: the
// client certificate provinces bind (issued by the station CA, kept in
// <data>/tls), the national role on the API, and its pushes running.
func (m *Main) startNational(srv *api.Server) error {
	if !m.Config.National {
		return nil
	}
	cert, err := m.PKI.ClientCertificate(m.Config.CAPSender)
	if err != nil {
		return fmt.Errorf("national: %w", err)
	}
	n := station.NewNational(station.NationalConfig{DB: m.DB, Sender: m.Config.CAPSender, Cert: cert,
		Logger: m.Logger.With("component", "national")})
	srv.National = n
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		n.Run(m.bg)
	}()
	return nil
}
