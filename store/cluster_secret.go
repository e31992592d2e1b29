package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var keyClusterSecret = []byte("cluster-secret")

// ClusterSecret returns the secret a cluster's nodes authenticate their
// requests to each other with ("" before the first leader chose one). It
// is replicated like every record, so every node that has the log has it.
func (db *DB) ClusterSecret(ctx context.Context) (string, error) {
	var s string
	err := db.view(ctx, func(tx *bolt.Tx) error {
		s = string(tx.Bucket(bucketMeta).Get(keyClusterSecret))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store: cluster secret: %w", err)
	}
	return s, nil
}

// EnsureClusterSecret stores secret unless the cluster has one already.
// The leader chooses it: applying the entry only copies it.
func (db *DB) EnsureClusterSecret(ctx context.Context, secret string) error {
	if s, err := db.ClusterSecret(ctx); err != nil || s != "" {
		return err
	}
	err := db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketMeta).Get(keyClusterSecret) != nil {
			return nil
		}
		return tx.put(bucketMeta, keyClusterSecret, []byte(secret))
	})
	if err != nil {
		return fmt.Errorf("store: cluster secret: %w", err)
	}
	return nil
}

// keyStationFile prefixes the station's key files kept for a cluster
// (meta bucket, replicated): the CA and the station key every node must
// share, so receivers trust whichever node leads.
const keyStationFile = "station_file:"

// StationFiles returns the station's key files the cluster keeps, by
// name (relative to the data dir); none before the first leader stored
// them.
func (db *DB) StationFiles(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		prefix := []byte(keyStationFile)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: station files: %w", err)
	}
	return out, nil
}

// EnsureStationFiles stores files unless the cluster holds station files
// already: the first leader's are the station's.
func (db *DB) EnsureStationFiles(ctx context.Context, files map[string][]byte) error {
	err := db.update(ctx, func(tx *wtx) error {
		meta := tx.Bucket(bucketMeta)
		if k, _ := meta.Cursor().Seek([]byte(keyStationFile)); k != nil && bytes.HasPrefix(k, []byte(keyStationFile)) {
			return nil
		}
		for name, b := range files {
			if err := tx.put(bucketMeta, []byte(keyStationFile+name), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: station files: %w", err)
	}
	return nil
}
