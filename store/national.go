package store

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// A national controller's records, in buckets made on their first write so
// older databases need no migration: provinces (id → Province) and the
// national alerts with each province's push (id → NationalAlert), which a
// restarted controller reads to resume its retries.
var (
	bucketProvinces      = []byte("provinces")
	bucketNationalAlerts = []byte("national_alerts")
)

// PutProvince creates (create) or replaces a province: ECONFLICT if create
// and the id is taken, ENOTFOUND if not and it is missing.
func (db *DB) PutProvince(ctx context.Context, p *loa.Province, create bool) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketProvinces); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketProvinces, err)
		}
		var old loa.Province
		found, err := get(tx, bucketProvinces, []byte(p.ID), &old)
		if err != nil {
			return err
		}
		switch {
		case create && found:
			return loa.Errorf(loa.ECONFLICT, "province %q already exists", p.ID)
		case !create && !found:
			return loa.Errorf(loa.ENOTFOUND, "no province %q", p.ID)
		case create:
			p.CreatedAt = db.now().UTC()
		default:
			p.CreatedAt, p.CreatedBy = old.CreatedAt, old.CreatedBy
		}
		return put(tx, bucketProvinces, []byte(p.ID), p)
	})
}

// Province returns province id, ENOTFOUND if there is none.
func (db *DB) Province(ctx context.Context, id string) (*loa.Province, error) {
	return getOptional[loa.Province](ctx, db, bucketProvinces, "province", id)
}

// Provinces returns every province, by id.
func (db *DB) Provinces(ctx context.Context) ([]*loa.Province, error) {
	return listOptional[loa.Province](ctx, db, bucketProvinces)
}

// DeleteProvince removes province id, ENOTFOUND if missing. Pushes already
// made to it keep their record.
func (db *DB) DeleteProvince(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketProvinces)
		if b == nil || b.Get([]byte(id)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "no province %q", id)
		}
		return tx.del(bucketProvinces, []byte(id))
	})
}

// PutNationalAlert stores a national alert, new or changed.
func (db *DB) PutNationalAlert(ctx context.Context, a *loa.NationalAlert) error {
	if a.ID == "" {
		return fmt.Errorf("national alert without id")
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketNationalAlerts); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketNationalAlerts, err)
		}
		return put(tx, bucketNationalAlerts, []byte(a.ID), a)
	})
}

// NationalAlert returns national alert id, ENOTFOUND if there is none.
func (db *DB) NationalAlert(ctx context.Context, id string) (*loa.NationalAlert, error) {
	return getOptional[loa.NationalAlert](ctx, db, bucketNationalAlerts, "national alert", id)
}

// NationalAlerts returns every national alert, by id (ids sort by time).
func (db *DB) NationalAlerts(ctx context.Context) ([]*loa.NationalAlert, error) {
	return listOptional[loa.NationalAlert](ctx, db, bucketNationalAlerts)
}

// TokenByClientCert returns the usable token bound to the client
// certificate with SHA-256 fingerprint fp (loa.CertSHA256), EUNAUTHORIZED
// if none. Few tokens carry one, so they are scanned.
func (db *DB) TokenByClientCert(ctx context.Context, fp string) (*loa.Token, error) {
	fp = strings.ToLower(fp)
	var t *loa.Token
	err := db.view(ctx, func(tx *bolt.Tx) error {
		recs, err := list[tokenRecord](tx, bucketTokens)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Token.ClientCertSHA256 == "" || rec.Token.ClientCertSHA256 != fp {
				continue
			}
			if rec.Token.Usable(db.now()) != nil {
				continue // a revoked binding; a newer token may hold the same certificate
			}
			rec.Token.Hash = rec.Hash
			t = &rec.Token
			return nil
		}
		return loa.Errorf(loa.EUNAUTHORIZED, "unknown client certificate (SHA-256 %s): an admin binds it to a token (client_cert_sha256)", fp)
	})
	return t, err
}

// getOptional reads id from a bucket that may not exist yet.
func getOptional[T any](ctx context.Context, db *DB, bucket []byte, what, id string) (*T, error) {
	v := new(T)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucket) != nil {
			if found, err := get(tx, bucket, []byte(id), v); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "no %s %q", what, id)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// listOptional lists a bucket that may not exist yet.
func listOptional[T any](ctx context.Context, db *DB, bucket []byte) ([]*T, error) {
	out := []*T{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucket) == nil {
			return nil
		}
		var err error
		out, err = list[T](tx, bucket)
		return err
	})
	return out, err
}
