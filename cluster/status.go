package cluster

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Status is a node's view of the cluster, for `loa cluster status`, the
// console and alarms.
type Status struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	State   string `json:"state"`   // Leader, Follower, Candidate, Shutdown
	Leading bool   `json:"leading"` // leads and has applied the log: serves writes
	Witness bool   `json:"witness,omitempty"`

	LeaderID   string `json:"leader_id,omitempty"`
	LeaderAddr string `json:"leader_addr,omitempty"`
	Term       uint64 `json:"term"`

	LastLogIndex      uint64 `json:"last_log_index"`
	CommitIndex       uint64 `json:"commit_index"`
	AppliedIndex      uint64 `json:"applied_index"`
	CommitLag         uint64 `json:"commit_lag"` // committed entries not yet applied here
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	// LastContact is how long ago a follower last heard from the leader.
	LastContact time.Duration `json:"last_contact_ns,omitempty"`
	// SnapshotsInstalled counts snapshots this node's store was restored
	// from since Open (sent by a leader because it was too far behind).
	SnapshotsInstalled uint64 `json:"snapshots_installed"`
	// ApplyStuck: this node's store refuses a committed entry (a full or
	// failing disk); it retries and stays behind until it takes it.
	ApplyStuck bool `json:"apply_stuck,omitempty"`

	Members []Member `json:"members"`
}

// A Member is one server of the cluster's configuration. Its progress is
// known on the leader only (from the followers' answers).
type Member struct {
	Peer
	Voter bool `json:"voter"`
	// LastLogIndex is the member's last log index as it last told the
	// leader, and Lag how many entries it is behind the leader's log.
	LastLogIndex uint64 `json:"last_log_index,omitempty"`
	Lag          uint64 `json:"lag"`
	// LastContact is when the member last answered the leader.
	LastContact time.Time `json:"last_contact,omitzero"`
	// Unreachable: the leader's heartbeats to the member fail.
	Unreachable bool `json:"unreachable,omitempty"`
}

// Status returns the node's view of the cluster now.
func (n *Node) Status() Status {
	s := Status{
		ID: n.cfg.NodeID, Addr: n.Addr(), State: n.raft.State().String(),
		Leading: n.ready.Load(), Witness: n.cfg.Witness,
		Term: n.raft.CurrentTerm(), LastLogIndex: n.raft.LastIndex(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(),
		SnapshotsInstalled: n.fsm.restores.Load(), ApplyStuck: n.fsm.stuck.Load(),
	}
	s.LeaderID, s.LeaderAddr = n.Leader()
	if s.CommitIndex > s.AppliedIndex {
		s.CommitLag = s.CommitIndex - s.AppliedIndex
	}
	stats := n.raft.Stats()
	s.LastSnapshotIndex, _ = strconv.ParseUint(stats["last_snapshot_index"], 10, 64)
	if d, err := time.ParseDuration(stats["last_contact"]); err == nil {
		s.LastContact = d
	}
	leader := n.raft.State() == raft.Leader
	for _, sv := range n.servers() {
		m := Member{Peer: Peer{ID: string(sv.ID), Addr: string(sv.Address), Witness: n.witnesses[string(sv.ID)]},
			Voter: sv.Suffrage == raft.Voter}
		switch {
		case !leader:
		case m.ID == s.ID:
			m.LastLogIndex, m.LastContact = s.LastLogIndex, time.Now()
		default:
			if p, ok := n.transport.progress(sv.ID); ok {
				m.LastLogIndex, m.LastContact = p.lastLog, p.at
			}
			if s.LastLogIndex > m.LastLogIndex {
				m.Lag = s.LastLogIndex - m.LastLogIndex
			}
			if v, ok := n.failing.Load(m.ID); ok {
				m.Unreachable, m.LastContact = true, v.(time.Time)
			}
		}
		s.Members = append(s.Members, m)
	}
	return s
}
