package daemon

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// A national controller authenticates to a province by its TLS client
// certificate (docs/national.md); a follower that passes its push on
// ends that TLS session, so it hands the certificate to the leader in a
// header, vouched for by the cluster secret. The handshake on the
// follower proved the client holds the certificate's key.
const (
	forwardedCertHeader = "X-Loa-Client-Cert"  // base64 DER
	clusterAuthHeader   = "X-Loa-Cluster-Auth" // the cluster secret
)

// forwardClientCert sets the headers on out for in's client certificate,
// and drops any a client sent itself.
func forwardClientCert(out, in *http.Request, secret string) {
	out.Header.Del(forwardedCertHeader)
	out.Header.Del(clusterAuthHeader)
	if secret == "" || in.TLS == nil || len(in.TLS.PeerCertificates) == 0 {
		return
	}
	out.Header.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(in.TLS.PeerCertificates[0].Raw))
	out.Header.Set(clusterAuthHeader, secret)
}

// acceptForwardedCert, on the leader, takes a follower's forwarded client
// certificate as the request's own when the cluster secret vouches for
// it; otherwise the headers are dropped and count for nothing.
func (n *Node) acceptForwardedCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, auth := r.Header.Get(forwardedCertHeader), r.Header.Get(clusterAuthHeader)
		if raw == "" && auth == "" {
			next.ServeHTTP(w, r)
			return
		}
		r = r.Clone(r.Context())
		r.Header.Del(forwardedCertHeader)
		r.Header.Del(clusterAuthHeader)
		secret, err := n.DB.ClusterSecret(r.Context())
		if err == nil && secret != "" && subtle.ConstantTimeCompare([]byte(auth), []byte(secret)) == 1 {
			if der, err := base64.StdEncoding.DecodeString(raw); err == nil {
				if cert, err := x509.ParseCertificate(der); err == nil {
					r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert}}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// otherLeader is the leader when it is another node with an API address.
func (n *Node) otherLeader() (ClusterPeer, bool) {
	id, _ := n.Raft.Leader()
	p, ok := n.cfg.Cluster.peer(id)
	return p, ok && p.API != "" && id != n.self.ID
}

// clusterCall sends a node-to-node request (the cluster secret as its
// bearer) to peer p: body as JSON when not nil, a 2xx answer decoded
// into out when not nil.
func (n *Node) clusterCall(ctx context.Context, p ClusterPeer, method, path string, body, out any) error {
	secret, err := n.DB.ClusterSecret(ctx)
	if err != nil || secret == "" {
		return fmt.Errorf("no cluster secret yet: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.API+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := n.blobClient().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d", p.ID, path, res.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", p.ID, path, err)
	}
	return nil
}
