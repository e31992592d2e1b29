package daemon

import (
	"cmp"

	"github.com/loa-broadcast/loa/station"
)

// openStored builds the stored-message library, which alerts use to play
// a stored message from the receivers' own storage; startStored gives it
// the URL receivers download from (as firmware: -firmware-url, else the
// API's, HTTPS when on) and runs its manifest sender.
func (m *Main) openStored() {
	m.Stored = station.NewStored(m.DB, m.Fleet, m.Fleet, m.StationKey, m.Config.FirmwareURL, m.Logger.With("component", "stored"))
	m.Alerts.SetStored(m.Stored)
}

func (m *Main) startStored() {
	m.Stored.Serving(cmp.Or(m.HTTPSURL(), m.URL()))
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Stored.Run(m.bg)
	}()
}
