package store

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// TokenPrefix starts every token secret, so a leaked one is easy to spot
// in logs and by secret scanners.
const TokenPrefix = "loa_"

// tokenRecord is a Token as stored: loa.Token hides its hash from JSON so
// it never reaches an API response, but the store must keep it.
type tokenRecord struct {
	loa.Token
	Hash string `json:"hash"`
}

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// CreateToken stores t and returns its secret, which is shown once: only
// its SHA-256 is kept (in t.Hash). It sets t.ID if empty and t.CreatedAt.
// A scope (t.AreaID) must name an existing area.
func (db *DB) CreateToken(ctx context.Context, t *loa.Token) (secret string, err error) {
	id := t.ID
	if id == "" {
		id = "tok-" + hex.EncodeToString(randomBytes(8))
	}
	if err := loa.ValidateID("id", id); err != nil {
		return "", err
	}
	if err := loa.ValidateName("name", t.Name, false); err != nil {
		return "", err
	}
	if !loa.ValidTokenRole(t.Role) {
		return "", loa.Errorf(loa.EINVALID, "role: must be one of %s, not %q", loa.RoleList(), t.Role)
	}
	secret = TokenPrefix + strings.ToLower(secretEncoding.EncodeToString(randomBytes(32)))
	hash := hashSecret(secret)
	err = db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketTokens).Get([]byte(id)) != nil {
			return loa.Errorf(loa.ECONFLICT, "id: token %q already exists", id)
		}
		if t.AreaID != "" {
			if err := areaExists(tx, "area_id", t.AreaID); err != nil {
				return err
			}
		}
		rec := tokenRecord{Token: *t, Hash: hash}
		rec.ID, rec.CreatedAt, rec.RevokedAt = id, db.now().UTC(), time.Time{}
		if err := put(tx, bucketTokens, []byte(id), &rec); err != nil {
			return err
		}
		if err := tx.put(bucketTokensByHash, []byte(hash), []byte(id)); err != nil {
			return err
		}
		t.ID, t.CreatedAt, t.Hash = id, rec.CreatedAt, hash
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// TokenBySecret returns the token whose secret is secret, EUNAUTHORIZED if
// there is none or it is revoked or expired. The lookup is by hash, so the
// secret is never compared byte by byte against stored data.
func (db *DB) TokenBySecret(ctx context.Context, secret string) (*loa.Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, loa.Errorf(loa.EUNAUTHORIZED, "invalid token")
	}
	hash := hashSecret(secret)
	var t *loa.Token
	err := db.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokensByHash).Get([]byte(hash))
		if id == nil {
			return loa.Errorf(loa.EUNAUTHORIZED, "invalid token")
		}
		var rec tokenRecord
		if found, err := get(tx, bucketTokens, id, &rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.EUNAUTHORIZED, "invalid token")
		}
		if err := rec.Token.Usable(db.now()); err != nil {
			return err
		}
		rec.Token.Hash = rec.Hash
		t = &rec.Token
		return nil
	})
	return t, err
}

// Token returns the token with id (never its secret), ENOTFOUND if none.
func (db *DB) Token(ctx context.Context, id string) (*loa.Token, error) {
	rec, err := getOne[tokenRecord](ctx, db, bucketTokens, "token", id)
	if err != nil {
		return nil, err
	}
	rec.Token.Hash = rec.Hash
	return &rec.Token, nil
}

// RevokeToken marks token id revoked and drops its secret's hash from the
// lookup index in the same transaction, so the next request with it is
// refused. The record stays, for the audit log's sake.
func (db *DB) RevokeToken(ctx context.Context, id string) (*loa.Token, error) {
	var t *loa.Token
	err := db.update(ctx, func(tx *wtx) error {
		var rec tokenRecord
		if found, err := get(tx, bucketTokens, []byte(id), &rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "token %q not found", id)
		}
		if !rec.RevokedAt.IsZero() {
			return loa.Errorf(loa.ECONFLICT, "token %q was already revoked at %s", id, rec.RevokedAt.Format(time.RFC3339))
		}
		rec.RevokedAt = db.now().UTC()
		if err := tx.del(bucketTokensByHash, []byte(rec.Hash)); err != nil {
			return err
		}
		if err := put(tx, bucketTokens, []byte(id), &rec); err != nil {
			return err
		}
		rec.Token.Hash = rec.Hash
		t = &rec.Token
		return nil
	})
	return t, err
}

// Tokens returns every token (with its hash, never its secret), sorted by id.
func (db *DB) Tokens(ctx context.Context) ([]*loa.Token, error) {
	var ts []*loa.Token
	err := db.view(ctx, func(tx *bolt.Tx) error {
		recs, err := list[tokenRecord](tx, bucketTokens)
		for _, r := range recs {
			r.Token.Hash = r.Hash
			ts = append(ts, &r.Token)
		}
		return err
	})
	return ts, err
}

// HasTokens reports whether any token exists; the daemon uses it to decide
// whether to bootstrap an admin token on first start.
func (db *DB) HasTokens(ctx context.Context) (bool, error) {
	var has bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketTokens).Cursor().First()
		has = k != nil
		return nil
	})
	return has, err
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
