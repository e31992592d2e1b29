package broker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns Prometheus metrics read from the broker's own counters,
// for the caller to register.
func (b *Broker) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "loa", Subsystem: "broker", Name: name, Help: help,
		}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("connections_total", "MQTT connections accepted after authentication.", &b.connections),
		counter("auth_failures_total", "MQTT connections refused for bad, missing or uncheckable credentials.", &b.authFailures),
		counter("acl_denials_total", "MQTT publishes, subscriptions, Last Wills and client ids refused by the ACL.", &b.refused),
		counter("connections_dropped_total", "MQTT connections closed before authenticating to make room, or refused at the connection cap.", &b.gate.dropped),
		counter("standby_refusals_total", "MQTT device connections refused with CONNACK 3 (server unavailable) while this node is not the leader.", &b.standbyRefusals),
		counter("standby_drops_total", "MQTT device connections dropped when this node stopped being the leader.", &b.standbyDrops),
		counter("oversize_total", "MQTT clients disconnected for a packet over the size limit.", &b.oversize),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "loa", Subsystem: "broker", Name: "clients",
			Help: "MQTT clients connected now.",
		}, func() float64 { return float64(b.Stats().Clients) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "loa", Subsystem: "broker", Name: "pending_connections",
			Help: "MQTT connections open and not yet authenticated.",
		}, func() float64 { return float64(b.Stats().Pending) }),
	}
}
