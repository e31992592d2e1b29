package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/store"
)

// Blobs (media, firmware) travel outside the Raft log, by hash, between
// the nodes' APIs: the leader's upload asks the other nodes to pull it and
// returns once a quorum holds it (store.BlobReplicator); a node that was
// down pulls what it lacks when it is back (catchUpBlobs). Requests carry
// the cluster secret, which lives in the replicated store.

// blobTimeout bounds one blob's copy to a quorum: a media file over a
// slow link between controllers.
const blobTimeout = 2 * time.Minute

// Held implements store.BlobReplicator: it returns once a quorum of the
// group (this node included) holds the blob.
func (n *Node) Held(ctx context.Context, kind store.BlobKind, hash string) error {
	peers := n.cfg.Cluster.Peers
	need := len(peers)/2 + 1 - 1 // this node holds it
	if need <= 0 {
		return nil
	}
	secret, err := n.DB.ClusterSecret(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, blobTimeout)
	defer cancel()
	done := make(chan error, len(peers))
	asked := 0
	for _, p := range peers {
		if p.ID == n.self.ID || p.API == "" {
			continue
		}
		asked++
		go func() { done <- n.askPull(ctx, p, kind, hash, secret) }()
	}
	var errs []error
	for range asked {
		if err := <-done; err != nil {
			errs = append(errs, err)
			continue
		}
		if need--; need == 0 {
			return nil
		}
	}
	return loa.Errorf(loa.EUNAVAILABLE, "too few cluster nodes took a copy of the %s file (%v): a record is committed only once a quorum holds its bytes", kind, errors.Join(errs...))
}

// askPull asks peer p to pull the blob from this node.
func (n *Node) askPull(ctx context.Context, p ClusterPeer, kind store.BlobKind, hash string, secret string) error {
	url := fmt.Sprintf("%s/cluster/v1/blobs/%s/%s/pull?from=%s", p.API, kind, hash, n.self.ID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := n.blobClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", p.ID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%s: HTTP %d %s", p.ID, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func (n *Node) blobClient() *http.Client {
	// No redirects: an answer from elsewhere is not this node's copy.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n.mu.Lock()
	if n.tls != nil {
		c.Transport = n.tls.peers
	}
	n.mu.Unlock()
	return c
}

// pull copies the blob from peer from into this node's store.
func (n *Node) pull(ctx context.Context, from ClusterPeer, kind store.BlobKind, hash, secret string) error {
	if n.DB.HasBlob(kind, hash) {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/cluster/v1/blobs/%s/%s", from.API, kind, hash), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := n.blobClient().Do(req)
	if err != nil {
		return fmt.Errorf("pull from %s: %w", from.ID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("pull from %s: HTTP %d", from.ID, res.StatusCode)
	}
	return n.DB.PutBlob(kind, hash, res.Body)
}

// blobRoutes serves the other nodes: GET a blob, POST …/pull to take a
// copy from the node named by ?from=. Anything else goes to next.
func (n *Node) blobRoutes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/cluster/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		secret, err := n.DB.ClusterSecret(r.Context())
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if err != nil || secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			api.WriteError(w, r, loa.Errorf(loa.EUNAUTHENTICATED, "cluster requests carry the cluster's secret"))
			return
		}
		if r.URL.Path == "/cluster/v1/leaderless" && r.Method == http.MethodPost {
			n.serveLeaderless(w, r)
			return
		}
		if r.URL.Path == "/cluster/v1/presence" && r.Method == http.MethodGet {
			n.servePresence(w, r)
			return
		}
		if r.URL.Path == "/cluster/v1/missing" && r.Method == http.MethodGet {
			// What this node's last catch-up found missing, for the
			// leader's blob_missing alarm.
			var out []string
			if p := n.missing.Load(); p != nil {
				for _, b := range *p {
					out = append(out, string(b.kind)+"/"+b.hash)
				}
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/cluster/v1/blobs/")
		if !ok {
			api.WriteError(w, r, loa.Errorf(loa.ENOTFOUND, "no such cluster resource"))
			return
		}
		parts := strings.Split(rest, "/")
		if len(parts) < 2 {
			api.WriteError(w, r, loa.Errorf(loa.ENOTFOUND, "no such cluster resource"))
			return
		}
		kind, hash := store.BlobKind(parts[0]), parts[1]
		switch {
		case len(parts) == 2 && r.Method == http.MethodGet:
			f, err := n.DB.OpenBlob(kind, hash)
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			defer f.Close()
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(w, r, "", time.Time{}, f)
		case len(parts) == 3 && parts[2] == "pull" && r.Method == http.MethodPost:
			from, ok := n.cfg.Cluster.peer(r.URL.Query().Get("from"))
			if !ok || from.API == "" {
				api.WriteError(w, r, loa.Errorf(loa.EINVALID, "from: not a node of this cluster with an API address"))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), blobTimeout)
			defer cancel()
			if err := n.pull(ctx, from, kind, hash, secret); err != nil {
				api.WriteError(w, r, loa.Errorf(loa.EUNAVAILABLE, "%v", err))
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			api.WriteError(w, r, loa.Errorf(loa.ENOTFOUND, "no such cluster resource"))
		}
	})
}

// catchUpBlobs pulls the blobs this node's records reference but its
// disk lacks (it was down, or joined late), from the leader first (it
// committed them), else from any other node that holds one. It runs on
// every node, the leader too: a node back from an outage may lead before
// it caught up (its peer failed meanwhile, or leadership was handed to
// it), and a leader lacking a file fails every play of it. Missing blobs
// are logged until held.
func (n *Node) catchUpBlobs(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		secret, err := n.DB.ClusterSecret(ctx)
		if err != nil || secret == "" {
			continue
		}
		var missing []blobRef
		for _, b := range n.referencedBlobs(ctx) {
			if n.DB.HasBlob(b.kind, b.hash) {
				continue
			}
			if from, err := n.pullFromAny(ctx, b, secret); err != nil {
				missing = append(missing, b)
				n.log.Warn("a blob this node's records reference is missing here and could not be pulled yet", "kind", b.kind, "hash", b.hash, "err", err)
			} else {
				n.log.Info("pulled a missing blob", "from", from, "kind", b.kind, "hash", b.hash)
			}
		}
		n.missing.Store(&missing)
	}
}

// FetchBlob pulls a blob this node lacks from any other node, at once: a
// node that has just come to lead may resume a session whose audio its
// catch-up has not pulled yet (store.BlobFetcher).
func (n *Node) FetchBlob(ctx context.Context, kind store.BlobKind, hash string) error {
	secret, err := n.DB.ClusterSecret(ctx)
	if err != nil || secret == "" {
		return fmt.Errorf("no cluster secret yet: %w", err)
	}
	from, err := n.pullFromAny(ctx, blobRef{kind, hash}, secret)
	if err != nil {
		return err
	}
	n.log.Info("pulled a missing blob on demand", "from", from, "kind", kind, "hash", hash)
	return nil
}

// pullFromAny pulls b from the leader, else from the first other node
// that has it, and returns the node it came from. Each try is bounded by
// blobTimeout: a frozen peer accepts the connection but never answers.
func (n *Node) pullFromAny(ctx context.Context, b blobRef, secret string) (string, error) {
	var errs []error
	for _, p := range n.blobSources() {
		pctx, cancel := context.WithTimeout(ctx, blobTimeout)
		err := n.pull(pctx, p, b.kind, b.hash, secret)
		cancel()
		if err == nil {
			return p.ID, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return "", errors.New("no other cluster node with an API address to pull from")
	}
	return "", errors.Join(errs...)
}

// blobSources lists the other nodes with an API address, the leader first.
func (n *Node) blobSources() []ClusterPeer {
	id, _ := n.Raft.Leader()
	var out []ClusterPeer
	if l, ok := n.cfg.Cluster.peer(id); ok && id != n.self.ID && l.API != "" {
		out = append(out, l)
	}
	for _, p := range n.cfg.Cluster.Peers {
		if p.ID != n.self.ID && p.ID != id && p.API != "" {
			out = append(out, p)
		}
	}
	return out
}

type blobRef struct {
	kind store.BlobKind
	hash string
}

func (n *Node) referencedBlobs(ctx context.Context) []blobRef {
	var out []blobRef
	if ms, err := n.DB.MediaList(ctx); err == nil {
		for _, m := range ms {
			if m.Hash != "" {
				out = append(out, blobRef{store.MediaBlob, m.Hash})
			}
		}
	}
	if fs, err := n.DB.FirmwareImages(ctx); err == nil {
		for _, f := range fs {
			out = append(out, blobRef{store.FirmwareBlob, f.SHA256})
		}
	}
	return out
}

// peerMissing asks peer p which blobs it lacks.
// A frozen peer accepts the connection but never answers: bounded, so
// the leader's watch goes on.
func (n *Node) peerMissing(ctx context.Context, p ClusterPeer) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []string
	return out, n.clusterCall(ctx, p, http.MethodGet, "/cluster/v1/missing", nil, &out)
}
