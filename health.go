package loa

import (
	"context"
	"time"
)

// HealthRetention is how long hourly health aggregates (and cleared
// alarms) are kept: two months, so last month's report (docs/reports.md)
// can be made in full all through this month.
const HealthRetention = 62 * 24 * time.Hour

// HealthHour aggregates one device's telemetry over one clock hour (UTC).
// Raw samples are not kept. Stream counts are summed over the hour from
// the increments of the receivers' per-session counters.
type HealthHour struct {
	Device        string    `json:"device"`
	Hour          time.Time `json:"hour"` // start of the hour, UTC
	Samples       int       `json:"samples"`
	OnlineSeconds float64   `json:"online_s"`
	RSSIMin       int       `json:"rssi_min"`
	RSSIAvg       float64   `json:"rssi_avg"`
	RSSIMax       int       `json:"rssi_max"`
	TempMaxC      float64   `json:"temp_max_c"`
	VolumeLast    int       `json:"volume_last"`
	Received      uint64    `json:"received"`
	Lost          uint64    `json:"lost"`
	Late          uint64    `json:"late"`
	Concealed     uint64    `json:"concealed"`
	FECRecovered  uint64    `json:"fec_recovered"`
	JitterMaxMs   float64   `json:"jitter_max_ms"`
}

// Merge folds o, a later aggregate of the same device and hour (the
// process restarted within the hour), into h.
func (h *HealthHour) Merge(o HealthHour) {
	if o.Samples > 0 {
		if h.Samples == 0 {
			h.RSSIMin, h.RSSIMax, h.TempMaxC, h.VolumeLast = o.RSSIMin, o.RSSIMax, o.TempMaxC, o.VolumeLast
		} else {
			h.RSSIMin, h.RSSIMax = min(h.RSSIMin, o.RSSIMin), max(h.RSSIMax, o.RSSIMax)
			h.TempMaxC = max(h.TempMaxC, o.TempMaxC)
			h.VolumeLast = o.VolumeLast
		}
		h.RSSIAvg = (h.RSSIAvg*float64(h.Samples) + o.RSSIAvg*float64(o.Samples)) / float64(h.Samples+o.Samples)
		h.Samples += o.Samples
	}
	h.OnlineSeconds = min(h.OnlineSeconds+o.OnlineSeconds, time.Hour.Seconds())
	h.Received += o.Received
	h.Lost += o.Lost
	h.Late += o.Late
	h.Concealed += o.Concealed
	h.FECRecovered += o.FECRecovered
	h.JitterMaxMs = max(h.JitterMaxMs, o.JitterMaxMs)
}

// HealthService answers a device's health history.
type HealthService interface {
	// HealthHistory returns the device's hourly aggregates whose hour
	// starts within [from, to), oldest first, including the hour in progress.
	HealthHistory(ctx context.Context, device string, from, to time.Time) ([]HealthHour, error)
}
