package devices

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

type metrics struct {
	online    prometheus.GaugeFunc
	offline   prometheus.GaugeFunc
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
		offline: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loa_devices_offline",
			Help: "Devices the controller has heard of whose last accepted status is offline.",
		}, func() float64 {
			f.mu.Lock()
			n := len(f.devices)
			f.mu.Unlock()
			return float64(n) - float64(f.online.Load())
		}),
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
// devices online and offline, malformed payloads, unknown acks, dropped messages,
// commands by op and result, and command latency.
func (f *Fleet) Collectors() []prometheus.Collector {
	m := f.metrics
	return []prometheus.Collector{m.online, m.offline, m.malformed, m.unknown, m.dropped, m.commands, m.latency}
}

// streamHistograms describe stream quality across the fleet without
// per-device labels: one observation per telemetry window of a device
// that is streaming.
type streamHistograms struct {
	loss   prometheus.Histogram
	jitter prometheus.Histogram
}

func newStreamHistograms() *streamHistograms {
	return &streamHistograms{
		loss: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loa_device_stream_loss_ratio",
			Help:    "Packet loss of one receiver over one telemetry window while streaming (lost / (received + lost)).",
			Buckets: []float64{0, .001, .005, .01, .02, .05, .1, .2, .5, 1},
		}),
		jitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loa_device_stream_jitter_seconds",
			Help:    "Interarrival jitter a streaming receiver reports in its telemetry.",
			Buckets: []float64{.001, .005, .01, .02, .05, .1, .2, .5},
		}),
	}
}

func (h *streamHistograms) observe(d streamMark, jitterMs float64) {
	if n := d.received + d.lost; n > 0 {
		h.loss.Observe(float64(d.lost) / float64(n))
	}
	h.jitter.Observe(jitterMs / 1000)
}

func (h *streamHistograms) collectors() []prometheus.Collector {
	return []prometheus.Collector{h.loss, h.jitter}
}

// alarmMetrics count alarms by kind.
type alarmMetrics struct {
	active *prometheus.GaugeVec
	raised *prometheus.CounterVec
}

func newAlarmMetrics() *alarmMetrics {
	m := &alarmMetrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loa_alarms_active",
			Help: "Alarms raised and not cleared, by kind.",
		}, []string{"kind"}),
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_alarms_raised_total",
			Help: "Alarms raised since the controller started, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range loa.AlarmKinds { // every kind present from the start, at 0
		m.active.WithLabelValues(k)
		m.raised.WithLabelValues(k)
	}
	return m
}
