package api

import (
	"context"
	"net/http"

	"github.com/loa-broadcast/loa"
)

// ClusterAdmin is the Raft group this controller leads (daemon.Node); nil
// on a single controller. Only the leader changes anything: a follower
// answers reads from its own copy of the store and sends changes to it.
type ClusterAdmin interface {
	ClusterStatus(ctx context.Context) (*ClusterStatus, error)
	TransferLeadership(ctx context.Context, id string) error
	AddVoter(ctx context.Context, id, addr string) error
	RemoveServer(ctx context.Context, id string) error
}

// ClusterRoler tells /api/v1/me which node answers and who leads (a
// ClusterAdmin may implement it).
type ClusterRoler interface {
	ClusterRole() ClusterRole
}

// ClusterRole is the answering node's place in the group: role leader,
// follower or witness; the leader's id and API URL ("" while none is
// known, during an election).
type ClusterRole struct {
	Node      string `json:"node"`
	Role      string `json:"role"`
	Leader    string `json:"leader"`
	LeaderAPI string `json:"leader_api,omitempty"`
}

// ClusterStatus is GET /api/v1/cluster: the group as its leader sees it.
type ClusterStatus struct {
	Node         string          `json:"node"`
	State        string          `json:"state"`
	Leader       string          `json:"leader"`
	Term         uint64          `json:"term"`
	Fence        *ClusterFence   `json:"fence,omitempty"`
	CommitIndex  uint64          `json:"commit_index"`
	AppliedIndex uint64          `json:"applied_index"`
	Servers      []ClusterServer `json:"servers"`
}

// ClusterFence is the fence the leader's streams and plays carry.
type ClusterFence struct {
	Gen  uint64 `json:"gen"`
	Term uint64 `json:"term"`
}

// ClusterServer is one node of the group.
type ClusterServer struct {
	ID      string `json:"id"`
	Raft    string `json:"raft"`
	Voter   bool   `json:"voter"`
	Witness bool   `json:"witness,omitempty"`
	API     string `json:"api,omitempty"`
	MQTT    string `json:"mqtt,omitempty"`
}

// WriteError writes err as the API's JSON error, for handlers outside a
// Server (a cluster follower's).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	(&Server{}).writeError(w, r, err)
}

// clusterAdmin checks that the caller may run the cluster: station-wide
// admins only, as for backups.
func (s *Server) clusterAdmin(c *call) (ClusterAdmin, error) {
	if s.Cluster == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "this controller is not a cluster node (start it with -node-id and -cluster-peer)")
	}
	if c.tok.Role != loa.RoleAdmin || c.scoped() {
		return nil, loa.Errorf(loa.EFORBIDDEN, "the cluster is the whole station: station-wide admins only")
	}
	return s.Cluster, nil
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	cl, err := s.clusterAdmin(c)
	if err != nil {
		return err
	}
	st, err := cl.ClusterStatus(c.ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) clusterTransfer(w http.ResponseWriter, r *http.Request, c *call) error {
	cl, err := s.clusterAdmin(c)
	if err != nil {
		return err
	}
	var req struct {
		To string `json:"to"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.To != "" {
		if err := loa.ValidateID("to", req.To); err != nil {
			return err
		}
	}
	c.audit("cluster.transfer", req.To, "")
	if err := cl.TransferLeadership(c.ctx, req.To); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) clusterAdd(w http.ResponseWriter, r *http.Request, c *call) error {
	cl, err := s.clusterAdmin(c)
	if err != nil {
		return err
	}
	var req struct {
		ID   string `json:"id"`
		Raft string `json:"raft"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if err := loa.ValidateID("id", req.ID); err != nil {
		return err
	}
	if req.Raft == "" {
		return loa.Errorf(loa.EINVALID, "raft: required (host:port of the node's Raft transport)")
	}
	c.audit("cluster.add", req.ID, req.Raft)
	if err := cl.AddVoter(c.ctx, req.ID, req.Raft); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) clusterRemove(w http.ResponseWriter, r *http.Request, c *call) error {
	cl, err := s.clusterAdmin(c)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	c.audit("cluster.remove", id, "")
	if err := cl.RemoveServer(c.ctx, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
