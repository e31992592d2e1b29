package broadcast

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's Prometheus collectors. They belong to one
// engine and are registered by whoever wires it (cmd/loa).
type metrics struct {
	packets      prometheus.Counter
	bytes        prometheus.Counter
	sendErrors   prometheus.Counter
	rtcpSent     prometheus.Counter
	rtcpAccepted prometheus.Counter
	rtcpIgnored  prometheus.Counter
	active       prometheus.Gauge

	srtcpAuthFailures  prometheus.Counter
	challengesSent     prometheus.Counter
	challengesAnswered prometheus.Counter
	addressMoves       prometheus.Counter
	exchanges          prometheus.Counter
	exchangesIgnored   prometheus.Counter
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "loa", Subsystem: "broadcast", Name: name, Help: help})
	}
	return &metrics{
		packets:      c("rtp_packets_sent_total", "RTP datagrams sent, one per receiver per frame."),
		bytes:        c("rtp_bytes_sent_total", "Bytes of RTP datagrams sent (header and payload)."),
		sendErrors:   c("rtp_send_errors_total", "RTP datagrams the kernel refused."),
		rtcpSent:     c("rtcp_packets_sent_total", "RTCP datagrams (sender reports, BYE) sent."),
		rtcpAccepted: c("rtcp_accepted_total", "Datagrams received that authenticated a receiver (RTCP with its token, or SRTCP under its keys)."),
		rtcpIgnored:  c("rtcp_ignored_total", "Datagrams received and dropped: not RTCP, malformed, unknown SSRC or bad token."),
		srtcpAuthFailures: c("srtcp_auth_failures_total",
			"SRTCP datagrams from SRTP receivers dropped: not authenticated under the receiver's keys, or replayed."),
		challengesSent: c("srtcp_challenges_sent_total",
			"Address challenges sent to SRTP receivers reporting from an address their stream does not go to."),
		challengesAnswered: c("srtcp_challenges_answered_total",
			"Address challenges answered, authenticated, from the challenged address."),
		addressMoves: c("srtp_address_moves_total",
			"SRTP receivers' streams moved to a new address after an answered challenge."),
		exchanges: c("time_exchanges_total",
			"Time exchanges (RTCP XR RRTR) answered with a Sender Report and a DLRR block."),
		exchangesIgnored: c("time_exchanges_ignored_total",
			"Time exchanges ignored: more than one per second from a receiver."),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "loa", Subsystem: "broadcast", Name: "sessions_active",
			Help: "Sessions streaming now."}),
	}
}

// Collectors returns the engine's metrics for registration.
func (e *Engine) Collectors() []prometheus.Collector {
	m := e.metrics
	return []prometheus.Collector{m.packets, m.bytes, m.sendErrors, m.rtcpSent,
		m.rtcpAccepted, m.rtcpIgnored, m.active, m.srtcpAuthFailures, m.challengesSent,
		m.challengesAnswered, m.addressMoves, m.exchanges, m.exchangesIgnored}
}
