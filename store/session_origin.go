package store

import (
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// originsFromCreators gives every session stored before sessions had an
// Origin the one its CreatedBy prefix named ("alert:…", "schedule:…",
// "fallback:…"; none: manual), and CreatedBy the user behind it: the
// alert's or schedule's creator, none for a fallback.
func originsFromCreators(tx *bolt.Tx) error {
	b := tx.Bucket(bucketSessions)
	type update struct {
		key []byte
		s   *loa.Session
	}
	var updates []update
	err := b.ForEach(func(k, v []byte) error {
		s := new(loa.Session)
		if err := json.Unmarshal(v, s); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucketSessions, k, err)
		}
		if s.Origin.Kind != "" {
			return nil
		}
		kind, id, ok := strings.Cut(s.CreatedBy, ":")
		switch {
		case ok && kind == loa.OriginAlert:
			var a loa.Alert
			if _, err := get(tx, bucketAlerts, []byte(id), &a); err != nil {
				return err
			}
			s.Origin, s.CreatedBy = loa.Origin{Kind: kind, ID: id}, a.CreatedBy
		case ok && kind == loa.OriginSchedule:
			var sc loa.Schedule
			if _, err := get(tx, bucketSchedules, []byte(id), &sc); err != nil {
				return err
			}
			s.Origin, s.CreatedBy = loa.Origin{Kind: kind, ID: id}, sc.CreatedBy
		case ok && kind == loa.OriginFallback:
			s.Origin, s.CreatedBy = loa.Origin{Kind: kind, ID: id}, ""
		default:
			s.Origin = loa.Origin{Kind: loa.OriginManual}
		}
		updates = append(updates, update{append([]byte(nil), k...), s})
		return nil
	})
	if err != nil {
		return err
	}
	// Written after the walk: bbolt cursors do not survive puts.
	for _, u := range updates {
		if err := put(tx, bucketSessions, u.key, u.s); err != nil {
			return err
		}
	}
	return nil
}
