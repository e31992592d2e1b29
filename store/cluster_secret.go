package store

import (
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
