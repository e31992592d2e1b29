package cluster

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns the node's Prometheus metrics, read when scraped, for
// whoever wires the node to register.
func (n *Node) Collectors() []prometheus.Collector {
	g := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "loa", Subsystem: "cluster", Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		g("leader", "1 while this node leads and serves writes, else 0.", func() float64 {
			if n.ready.Load() {
				return 1
			}
			return 0
		}),
		g("term", "The current Raft term.", func() float64 { return float64(n.raft.CurrentTerm()) }),
		g("commit_lag", "Committed log entries not yet applied to this node's store.", func() float64 {
			c, a := n.raft.CommitIndex(), n.raft.AppliedIndex()
			if c > a {
				return float64(c - a)
			}
			return 0
		}),
		g("follower_lag_max", "On the leader, how many log entries the furthest-behind member lacks.", func() float64 {
			var most uint64
			if n.raft.State() == raft.Leader {
				for _, m := range n.Status().Members {
					most = max(most, m.Lag)
				}
			}
			return float64(most)
		}),
		g("applied_index", "Index of the last log entry applied to this node's store.", func() float64 {
			return float64(n.raft.AppliedIndex())
		}),
	}
}
