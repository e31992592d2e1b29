package cluster

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// progressTransport is raft's TCP transport, noting each follower's last
// log index from its answers to the leader's AppendEntries (hashicorp/raft
// keeps its match indexes to itself), for per-follower lag in Status.
// It declines pipelining, so every append's answer passes through here;
// the store proposes one entry at a time (a leader's mutex), which a
// pipeline would not speed up.
type progressTransport struct {
	*raft.NetworkTransport
	mu    sync.Mutex
	peers map[raft.ServerID]peerProgress
}

type peerProgress struct {
	lastLog uint64
	at      time.Time
}

func newProgressTransport(t *raft.NetworkTransport) *progressTransport {
	return &progressTransport{NetworkTransport: t, peers: map[raft.ServerID]peerProgress{}}
}

func (t *progressTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *progressTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress,
	args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Success {
		t.mu.Lock()
		t.peers[id] = peerProgress{lastLog: resp.LastLog, at: time.Now()}
		t.mu.Unlock()
	}
	return err
}

func (t *progressTransport) progress(id raft.ServerID) (peerProgress, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	return p, ok
}
