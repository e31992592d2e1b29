package devices

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa/protocol"
)

type metrics struct {
	online    prometheus.GaugeFunc
	malformed prometheus.CounterFunc
	unknown   prometheus.CounterFunc
	dropped   prometheus.CounterFunc
	commands  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

func newMetrics(f *Fleet) *metrics {
	return &metrics{
		online: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loa_devices_online",
			Help: "Devices whose last accepted status is online.",
		}, func() float64 { return float64(f.online.Load()) }),
		malformed: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loa_device_malformed_payloads_total",
			Help: "MQTT messages from devices ignored because their topic or payload did not parse.",
		}, func() float64 { return float64(f.malformed.Load()) }),
		unknown: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loa_device_unknown_acks_total",
			Help: "Acks ignored because their id matched no command of this controller.",
		}, func() float64 { return float64(f.unknownAcks.Load()) }),
		dropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loa_device_dropped_messages_total",
			Help: "Device messages or notifications dropped because their queue was full.",
		}, func() float64 { return float64(f.dropped.Load()) }),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_device_commands_total",
			Help: "Commands sent to devices, by op and result (done, failed, expired, timeout, unavailable).",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loa_device_command_duration_seconds",
			Help:    "Time from publishing a command to its final ack, by op.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
	}
}

// command counts one finished command; latency is observed only when the
// device answered.
func (m *metrics) command(op, result string, d time.Duration) {
	m.commands.WithLabelValues(op, result).Inc()
	switch result {
	case protocol.AckDone, protocol.AckFailed, protocol.AckExpired:
		m.latency.WithLabelValues(op).Observe(d.Seconds())
	}
}

// Collectors returns the fleet's metrics for the caller to register:
// devices online, malformed payloads, unknown acks, dropped messages,
// commands by op and result, and command latency.
func (f *Fleet) Collectors() []prometheus.Collector {
	m := f.metrics
	return []prometheus.Collector{m.online, m.malformed, m.unknown, m.dropped, m.commands, m.latency}
}
