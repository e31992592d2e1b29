package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// openNotify makes the notifier (before the alerts run, which tell it
// of every alert that ends) with the channels configured: e-mail
// with -smtp-addr, SMS with -sms-gateway-url (or the trigger gateway of
// -sms-gateway), the webhook with -alarm-webhook. Rules naming a channel
// the station lacks log a failure and go on along their chain.
func (m *Main) openNotify() error {
	cfg := m.Config
	channels := map[string]station.NotifyChannel{}
	if cfg.SMTPAddr != "" {
		if cfg.SMTPFrom == "" {
			return fmt.Errorf("smtp-from: required with -smtp-addr")
		}
		if err := loa.ValidateEmail("smtp-from", cfg.SMTPFrom); err != nil {
			return err
		}
		channels[loa.ChannelEmail] = &station.SMTPChannel{Addr: cfg.SMTPAddr, User: cfg.SMTPUser, Pass: cfg.SMTPPass,
			From: cfg.SMTPFrom, TLS: cfg.SMTPTLS}
	}
	gwURL, tmpl := cfg.SMSGatewayURL, cfg.SMSGatewayTemplate
	if gwURL == "" {
		gwURL = cfg.SMSGateway
	}
	if file, ok := strings.CutPrefix(tmpl, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("sms-gateway-template: %w", err)
		}
		tmpl = string(b)
	}
	if gwURL != "" {
		gw, err := station.NewSMSGatewayChannel(gwURL, cfg.SMSGatewayToken, tmpl)
		if err != nil {
			return err
		}
		channels[loa.ChannelSMS] = gw
	}
	if cfg.AlarmWebhook != "" {
		channels[loa.ChannelWebhook] = &station.WebhookChannel{URL: cfg.AlarmWebhook}
	}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + loopbackFor(cfg.HTTPAddr)
		if len(channels) > 0 {
			m.Logger.Warn("-public-url is not set: links in notifications point to this machine", "url", public)
		}
	}
	// Links are signed with a key derived from the station key, so they
	// outlive a restart.
	h := hmac.New(sha256.New, m.StationKey.Seed())
	h.Write([]byte("loa-notify-ack-v1"))
	m.Notifier = station.NewNotifier(station.NotifierConfig{DB: m.DB, Alarms: m.Alarms, Channels: channels, Key: h.Sum(nil),
		PublicURL: public, Minute: cfg.NotifyMinute, Tick: cfg.NotifyTick, Logger: m.Logger.With("component", "notify")})
	// Alerts that end reaching too few receivers are weighed against the
	// alert_delivery rules; Open starts the notifier's rounds.
	m.Alerts.OnEnd = m.Notifier.AlertEnded
	return nil
}
