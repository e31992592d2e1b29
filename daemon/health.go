package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/station"
)

// openHealthAndAlarms starts the hourly health book and the alarm
// evaluator on the fleet, and the alarm webhook when configured.
func (m *Main) openHealthAndAlarms(ctx context.Context) error {
	cfg := m.Config
	m.Health = devices.NewHealth(devices.HealthConfig{Store: m.DB, Logger: m.Logger.With("component", "health")})
	m.detach = append(m.detach, m.Health.Attach(m.Fleet))
	m.Health.Start()

	var onChange func(loa.AlarmChange)
	if cfg.AlarmWebhook != "" {
		w, err := station.NewAlarmWebhook(station.WebhookConfig{URL: cfg.AlarmWebhook, Logger: m.Logger.With("component", "alarm-webhook")})
		if err != nil {
			return err
		}
		m.webhook, onChange = w, w.Enqueue
	}
	var err error
	m.Alarms, err = devices.NewAlarms(ctx, devices.AlarmConfig{
		Thresholds: cfg.Alarms, Store: m.DB, Directory: m.DB, OnChange: onChange,
		Logger: m.Logger.With("component", "alarms"),
	})
	if err != nil {
		return fmt.Errorf("alarms: %w", err)
	}
	m.detach = append(m.detach, m.Alarms.Attach(m.Fleet))
	m.Alarms.Start()
	return nil
}

func (m *Main) healthCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	cs = append(cs, m.Health.Collectors()...)
	cs = append(cs, m.Alarms.Collectors()...)
	if m.webhook != nil {
		cs = append(cs, m.webhook.Collectors()...)
	}
	return cs
}

// closeAlarms detaches both from the fleet and stops the evaluator (which
// ends every alarm event stream) and the webhook.
func (m *Main) closeAlarms() {
	for _, d := range m.detach {
		d()
	}
	m.detach = nil
	if m.Alarms != nil {
		m.Alarms.Close()
		m.Alarms = nil
	}
	if m.webhook != nil {
		m.webhook.Close()
		m.webhook = nil
	}
}

// closeHealth writes every hour, the ones in progress included.
func (m *Main) closeHealth() error {
	if m.Health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.Health.Close(ctx)
	m.Health = nil
	return err
}
