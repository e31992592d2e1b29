package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// The area tree is indexed by parent (bucketAreaChildren), so a scoped
// caller's subtree is read by prefix seeks, never by loading every area:
// a station of 10,000 areas answers a commune's requests as fast as one of
// ten. Every write of an area keeps the index in the same transaction.

// maxAreaDepth bounds walks up the tree (province → commune → cluster, with
// room), so a corrupt parent cycle cannot loop.
const maxAreaDepth = 16

func childKey(parent, child string) []byte {
	k := make([]byte, 0, len(parent)+1+len(child))
	k = append(k, parent...)
	k = append(k, 0)
	return append(k, child...)
}

// indexAreaChildren builds the children index of the areas stored before
// it existed.
func indexAreaChildren(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketAreaChildren)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketAreaChildren, err)
	}
	return tx.Bucket(bucketAreas).ForEach(func(k, v []byte) error {
		var a loa.Area
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucketAreas, k, err)
		}
		return idx.Put(childKey(a.ParentID, a.ID), nil)
	})
}

// childIDs returns the ids of parent's children, in id order.
func childIDs(tx rtx, parent string) []string {
	var ids []string
	prefix := childKey(parent, "")
	c := tx.Bucket(bucketAreaChildren).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// AreaSubtree returns the area root and every area below it, parents
// before their children; ENOTFOUND if root does not exist. It reads only
// those areas.
func (db *DB) AreaSubtree(ctx context.Context, root string) ([]*loa.Area, error) {
	var out []*loa.Area
	err := db.view(ctx, func(tx *bolt.Tx) error {
		a, err := area(tx, root)
		if err != nil {
			return err
		}
		out = append(out, a)
		for i := 0; i < len(out); i++ {
			for _, id := range childIDs(tx, out[i].ID) {
				c, err := area(tx, id)
				if err != nil {
					return fmt.Errorf("area index: child %q of %q: %w", id, out[i].ID, err)
				}
				out = append(out, c)
			}
		}
		return nil
	})
	return out, err
}

// AreaPath returns area id and its ancestors, from id up to its province;
// ENOTFOUND if id does not exist. It reads only those areas.
func (db *DB) AreaPath(ctx context.Context, id string) ([]*loa.Area, error) {
	var out []*loa.Area
	err := db.view(ctx, func(tx *bolt.Tx) error {
		for next := id; next != "" && len(out) < maxAreaDepth; {
			a, err := area(tx, next)
			if err != nil {
				if len(out) > 0 {
					return fmt.Errorf("area %q: parent: %w", out[len(out)-1].ID, err)
				}
				return err
			}
			out = append(out, a)
			next = a.ParentID
		}
		return nil
	})
	return out, err
}
