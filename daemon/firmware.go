package daemon

import (
	"cmp"
	"context"

	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// openFirmware builds the firmware service and its rollout engine;
// startFirmware continues the stored rollouts once the HTTP server that
// serves the images is up.
func (m *Main) openFirmware() error {
	cfg := station.FirmwareConfig{DB: m.DB, BaseURL: m.Config.FirmwareURL, Resolve: m.Sessions.Resolve,
		Logger: m.Logger.With("component", "firmware")}
	if m.Config.FirmwareKey != "" {
		key, err := protocol.ReadFirmwarePublicKey(m.Config.FirmwareKey)
		if err != nil {
			return err
		}
		cfg.Key = key
	}
	// Downloads go over HTTPS when it is on.
	cfg.LocalOnly = isLoopback(cmp.Or(m.Config.TLS.HTTPSAddr, m.Config.HTTPAddr))
	var fw *station.FirmwareService // the engine asks it for each image's args
	m.rollouts = devices.NewRolloutEngine(devices.RolloutConfig{
		Store: m.DB, Sender: m.Fleet, Presence: m.Fleet,
		Args: func(ctx context.Context, imageID string) (protocol.FirmwareArgs, error) {
			return fw.FirmwareArgs(ctx, imageID)
		},
		Logger: m.Logger.With("component", "rollouts"),
	})
	cfg.Rollouts = m.rollouts
	fw = station.NewFirmwareService(cfg)
	m.Firmware = fw
	return nil
}

// startFirmware continues the rollouts a previous run left, with download
// URLs on the API's address (HTTPS when on) unless -firmware-url says
// otherwise.
func (m *Main) startFirmware(ctx context.Context) error {
	m.Firmware.Serving(cmp.Or(m.HTTPSURL(), m.URL()))
	return m.rollouts.Open(ctx)
}

// closeFirmware stops the rollouts; the stored ones continue at the next
// start.
func (m *Main) closeFirmware() error {
	if m.rollouts == nil {
		return nil
	}
	err := m.rollouts.Close()
	m.rollouts, m.Firmware = nil, nil
	return err
}
