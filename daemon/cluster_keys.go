package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/protocol"
)

// The station's keys in a cluster. Receivers trust the broker by the
// station CA they were enrolled with, and verify stored alerts, SMS
// triggers and programmes by the station key: whichever node leads must
// hold the same ones, or a failover silences every receiver on TLS. The
// first leader keeps its files in the replicated store (meta bucket);
// every node writes them into its data dir before it opens the station
// or its follower's TLS ports, and checks again every few seconds while
// it follows. (The store holds the CA's private key then, as backups
// already do: guard the nodes' disks as the CA's.)

// stationFileNames are the files kept for the cluster, relative to the
// data dir: the station key, and the CA when it is the station's own
// (one given by -tls-ca-cert is the operator's to place on every node).
func (n *Node) stationFileNames() []string {
	names := []string{protocol.StationKeyFile}
	if n.cfg.TLS.CACert == "" {
		names = append(names, "tls/"+pki.CACertFile, "tls/"+pki.CAKeyFile)
	}
	return names
}

// restoreStationFiles writes the cluster's station files into this node's
// data dir where its own differ (kept beside, renamed), and reports
// whether it changed any. Before the first leader stored them: nothing.
func (n *Node) restoreStationFiles(ctx context.Context) (bool, error) {
	files, err := n.DB.StationFiles(ctx)
	if err != nil || len(files) == 0 {
		return false, err
	}
	changed := false
	for _, name := range n.stationFileNames() {
		b, ok := files[name]
		if !ok {
			continue
		}
		path := filepath.Join(n.cfg.DataDir, filepath.FromSlash(name))
		cur, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.Equal(cur, b):
			continue
		case err == nil:
			aside := path + ".replaced-" + time.Now().UTC().Format("20060102T150405")
			if err := os.Rename(path, aside); err != nil {
				return changed, fmt.Errorf("station file %s: %w", name, err)
			}
			n.log.Warn("this node's station file differs from the cluster's: the cluster's is used, this node's kept beside", "file", path, "kept", aside)
		case !errors.Is(err, fs.ErrNotExist):
			return changed, fmt.Errorf("station file %s: %w", name, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return changed, fmt.Errorf("station file %s: %w", name, err)
		}
		mode := os.FileMode(0o600)
		if name == "tls/"+pki.CACertFile {
			mode = 0o644
		}
		if err := writeFileSync(path, b, mode); err != nil {
			return changed, fmt.Errorf("station file %s: %w", name, err)
		}
		changed = true
	}
	if changed {
		n.mu.Lock()
		n.tls = nil // made again from these files
		n.mu.Unlock()
	}
	return changed, nil
}

// saveStationFiles stores this leader's station files when the cluster
// holds none yet (its first leader, or a cluster seeded from a single
// controller).
func (n *Node) saveStationFiles(ctx context.Context) error {
	files := map[string][]byte{}
	for _, name := range n.stationFileNames() {
		b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, filepath.FromSlash(name)))
		if err != nil {
			return fmt.Errorf("station file %s: %w", name, err)
		}
		files[name] = b
	}
	return n.DB.EnsureStationFiles(ctx, files)
}

// watchStationFiles, while this node follows, writes the cluster's
// station files once they reach its store; its TLS ports take them at
// their next handshake (currentTLS).
func (n *Node) watchStationFiles(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.Main() != nil {
			continue
		}
		if _, err := n.restoreStationFiles(ctx); err != nil {
			n.log.Warn("the cluster's station files could not be written here", "err", err)
		}
	}
}
