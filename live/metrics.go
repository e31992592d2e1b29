package live

import "github.com/prometheus/client_golang/prometheus"

// metrics are the live ingest's Prometheus collectors, registered by
// whoever wires the Server (daemon).
type metrics struct {
	uplinks    prometheus.Gauge
	received   prometheus.Counter
	lost       prometheus.Counter
	dropped    prometheus.Counter
	inserted   prometheus.Counter
	transcoded prometheus.Counter
	ended      *prometheus.CounterVec
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "loa", Subsystem: "live", Name: name, Help: help})
	}
	return &metrics{
		uplinks: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "loa", Subsystem: "live", Name: "uplinks",
			Help: "Live microphones connected now."}),
		received:   c("packets_received_total", "Opus packets received from live uplinks and kept."),
		lost:       c("frames_lost_total", "Frames live uplinks never delivered in time: forwarded as gaps."),
		dropped:    c("frames_dropped_total", "Whole frames dropped because an uplink ran ahead (a fast clock, a stall's backlog)."),
		inserted:   c("frames_inserted_total", "Gaps inserted because an uplink fell behind (a slow clock, a stall)."),
		transcoded: c("uplinks_transcoded_total", "Uplinks whose Opus could not be forwarded as it came and were transcoded."),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "loa", Subsystem: "live", Name: "uplinks_ended_total",
			Help: "Live uplinks ended, by reason (ended, uplink lost, uplink closed)."}, []string{"reason"}),
	}
}

// Collectors returns the live ingest's metrics for registration.
func (s *Server) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.uplinks, m.received, m.lost, m.dropped, m.inserted, m.transcoded, m.ended}
}
