package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// A cluster without a quorum has no leader: nothing is broadcast,
// scheduled or changed, and no node can write an alarm. Each node notes
// how long it saw no leader; when it sees one again after longer than an
// election (ClusterConfig.NoQuorumAfter), it tells the leader, which
// raises no_quorum with the period and clears it at once: the
// notification rules tell staff that the station was off air.
const DefaultNoQuorumAfter = 10 * time.Second

func (n *Node) noQuorumAfter() time.Duration {
	if d := n.cfg.Cluster.NoQuorumAfter; d > 0 {
		return d
	}
	return DefaultNoQuorumAfter
}

type leaderless struct {
	mu    sync.Mutex
	since time.Time // when this node last saw no leader; zero: it sees one
}

// watchLeaderless follows the leader this node knows until ctx ends.
func (n *Node) watchLeaderless(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, _ := n.Raft.Leader()
		now := time.Now()
		n.noLeader.mu.Lock()
		since := n.noLeader.since
		switch {
		case id == "" && since.IsZero():
			n.noLeader.since = now
		case id != "":
			n.noLeader.since = time.Time{}
		}
		n.noLeader.mu.Unlock()
		if id != "" && !since.IsZero() && now.Sub(since) >= n.noQuorumAfter() {
			go n.reportLeaderless(ctx, since, now)
		}
	}
}

// leaderlessReport is a node's account of a period without a leader.
type leaderlessReport struct {
	Node string    `json:"node"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// reportLeaderless tells the leader (this node or another) of a period
// without one, trying for a minute.
func (n *Node) reportLeaderless(ctx context.Context, from, to time.Time) {
	rep := leaderlessReport{Node: n.self.ID, From: from.UTC(), To: to.UTC()}
	for try := 0; try < 30 && ctx.Err() == nil; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
		if m := n.Main(); m != nil {
			n.raiseNoQuorum(m, rep)
			return
		}
		leader, ok := n.otherLeader()
		if !ok {
			continue
		}
		if n.clusterCall(ctx, leader, http.MethodPost, "/cluster/v1/leaderless", rep, nil) == nil {
			return
		}
	}
	n.log.Warn("a period without a leader could not be reported to one", "from", from, "to", to)
}

// serveLeaderless takes a node's report on the leader.
func (n *Node) serveLeaderless(w http.ResponseWriter, r *http.Request) {
	var rep leaderlessReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&rep); err != nil || rep.From.IsZero() || rep.To.Before(rep.From) {
		api.WriteError(w, r, loa.Errorf(loa.EINVALID, "want {node, from, to} with from ≤ to"))
		return
	}
	m := n.Main()
	if m == nil {
		api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE, "node %s does not lead the cluster", n.self.ID))
		return
	}
	n.raiseNoQuorum(m, rep)
	w.WriteHeader(http.StatusNoContent)
}

// raiseNoQuorum raises and clears no_quorum for rep, once for periods
// that overlap (every node that saw it reports it).
func (n *Node) raiseNoQuorum(m *Main, rep leaderlessReport) {
	n.noLeader.mu.Lock()
	if !rep.From.After(n.noQuorumTo) {
		n.noLeader.mu.Unlock()
		return
	}
	n.noQuorumTo = rep.To
	n.noLeader.mu.Unlock()
	if m.Alarms == nil {
		return
	}
	d := rep.To.Sub(rep.From).Round(time.Second)
	zone, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		zone = time.UTC
	}
	m.Alarms.RaiseStation(loa.AlarmNoQuorum, loa.SeverityCritical, d.Seconds(), n.noQuorumAfter().Seconds(), fmt.Sprintf(
		"controller cluster: no leader for %s, from %s to %s (seen by node %s): a quorum of nodes did not answer each other; nothing was broadcast, scheduled or changed meanwhile",
		d, rep.From.In(zone).Format("02/01/2006 15:04:05"), rep.To.In(zone).Format("15:04:05"), rep.Node))
	m.Alarms.ClearStation(loa.AlarmNoQuorum, "node "+n.self.ID+" leads again")
}
