package daemon

import (
	"github.com/loa-broadcast/loa/station"
)

// openSMS starts the SMS trigger when there is a gateway: Main.SMSSender
// (a test's simulated network), or the HTTP gateway of -sms-gateway.
func (m *Main) openSMS() error {
	if m.SMSSender == nil && m.Config.SMSGateway != "" {
		gw, err := station.NewHTTPSMSGateway(m.Config.SMSGateway, m.Config.SMSGatewayToken)
		if err != nil {
			return err
		}
		m.SMSSender = gw
	}
	if m.SMSSender == nil {
		return nil
	}
	m.SMS = station.NewSMS(station.SMSConfig{DB: m.DB, Alerts: m.Alerts, Fleet: m.Fleet, Key: m.StationKey,
		Sender: m.SMSSender, Wait: m.Config.SMSWait, Rate: m.Config.SMSRate, Logger: m.Logger.With("component", "sms")})
	return nil
}
