package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/argon2"

	"github.com/loa-broadcast/loa"
)

// Password hashing: argon2id with OWASP's minimum cost (19 MiB, 2 passes,
// 1 lane): about 30 ms on a small server, so a guessing attacker is slow
// and the back-off of the API (per account) bounds the rest. The cost is
// kept in each hash (PHC string format), so it can be raised later
// without invalidating stored passwords.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

var b64 = base64.RawStdEncoding

// hashPassword returns password's argon2id hash in PHC string format.
func hashPassword(password string) string {
	salt := randomBytes(argonSaltLen)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// passwordMatches reports whether password hashes to hash, in constant
// time; a hash it cannot read matches nothing.
func passwordMatches(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads); err != nil ||
		mem == 0 || mem > 1<<20 || passes == 0 || passes > 16 || threads == 0 {
		return false
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, passes, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against for an unknown username, so its answer
// takes as long as a known one's.
var dummyHash = sync.OnceValue(func() string { return hashPassword("not a password of anyone") })

// userRecord is a User as stored, with its password hash.
type userRecord struct {
	loa.User
	Hash string `json:"hash"`
}

// sessionRecord is a sign-in session, keyed by the SHA-256 of its id: the
// id itself (the cookie) is never stored.
type sessionRecord struct {
	Username  string    `json:"username"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
}

// sessionTouchEvery bounds how often a session's last use is written: the
// idle timeout is hours, so a minute's error is nothing, and a busy
// console does not cost a write per request.
const sessionTouchEvery = time.Minute

// CreateUser stores u with password hashed. It sets CreatedAt and
// UpdatedAt; u.Name defaults to the username.
func (db *DB) CreateUser(ctx context.Context, u *loa.User, password string) error {
	if err := loa.ValidateUsername("username", u.Username); err != nil {
		return err
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	if err := loa.ValidateName("name", u.Name, true); err != nil {
		return err
	}
	if !loa.ValidRole(u.Role) {
		return loa.Errorf(loa.EINVALID, "role: must be one of %s, not %q", loa.RoleList(), u.Role)
	}
	if err := loa.ValidatePassword("password", password, u.Username); err != nil {
		return err
	}
	hash := hashPassword(password)
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketUsers).Get([]byte(u.Username)) != nil {
			return loa.Errorf(loa.ECONFLICT, "username: %q already exists", u.Username)
		}
		if u.AreaID != "" {
			if err := areaExists(tx, "area_id", u.AreaID); err != nil {
				return err
			}
		}
		now := db.now().UTC()
		u.CreatedAt, u.UpdatedAt = now, now
		return put(tx, bucketUsers, []byte(u.Username), &userRecord{User: *u, Hash: hash})
	})
}

// User returns the user named username, ENOTFOUND if none.
func (db *DB) User(ctx context.Context, username string) (*loa.User, error) {
	rec, err := getOne[userRecord](ctx, db, bucketUsers, "user", username)
	if err != nil {
		return nil, err
	}
	return &rec.User, nil
}

// Users returns every user, by username.
func (db *DB) Users(ctx context.Context) ([]*loa.User, error) {
	recs, err := listAll[userRecord](ctx, db, bucketUsers)
	out := make([]*loa.User, 0, len(recs))
	for _, r := range recs {
		out = append(out, &r.User)
	}
	return out, err
}

// HasUsers reports whether any user exists; the daemon creates the first
// admin when none does.
func (db *DB) HasUsers(ctx context.Context) (bool, error) {
	var has bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketUsers).Cursor().First()
		has = k != nil
		return nil
	})
	return has, err
}

// UpdateUser applies change to the user and stores it, refusing a change
// that leaves the station without an enabled station-wide admin. The
// username and the stamps are not change's to alter. A user disabled by
// it loses its sessions in the same transaction.
func (db *DB) UpdateUser(ctx context.Context, username string, change func(*loa.User) error) (*loa.User, error) {
	var out *loa.User
	err := db.update(ctx, func(tx *wtx) error {
		var rec userRecord
		if found, err := get(tx, bucketUsers, []byte(username), &rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "user %q not found", username)
		}
		before := rec.User
		if err := change(&rec.User); err != nil {
			return err
		}
		rec.Username, rec.CreatedAt, rec.CreatedBy = before.Username, before.CreatedAt, before.CreatedBy
		if err := loa.ValidateName("name", rec.Name, true); err != nil {
			return err
		}
		if !loa.ValidRole(rec.Role) {
			return loa.Errorf(loa.EINVALID, "role: must be one of %s, not %q", loa.RoleList(), rec.Role)
		}
		if rec.AreaID != "" && rec.AreaID != before.AreaID {
			if err := areaExists(tx, "area_id", rec.AreaID); err != nil {
				return err
			}
		}
		if before.StationAdmin() && !rec.StationAdmin() {
			if err := anotherStationAdmin(tx, username); err != nil {
				return err
			}
		}
		rec.UpdatedAt = db.now().UTC()
		if err := put(tx, bucketUsers, []byte(username), &rec); err != nil {
			return err
		}
		if rec.Disabled && !before.Disabled {
			if err := endSessionsOf(tx, username); err != nil {
				return err
			}
		}
		out = &rec.User
		return nil
	})
	return out, err
}

// anotherStationAdmin is nil if an enabled station-wide admin other than
// username exists, ECONFLICT otherwise: the last one cannot be locked out.
func anotherStationAdmin(tx rtx, username string) error {
	recs, err := list[userRecord](tx, bucketUsers)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Username != username && r.StationAdmin() {
			return nil
		}
	}
	return loa.Errorf(loa.ECONFLICT, "%s is the last enabled admin of the whole station; make another one first", username)
}

// SetPassword replaces the user's password hash and ends its sessions, so
// a reset locks out whoever knew the old one.
func (db *DB) SetPassword(ctx context.Context, username, password string) error {
	if err := loa.ValidatePassword("password", password, username); err != nil {
		return err
	}
	hash := hashPassword(password)
	return db.update(ctx, func(tx *wtx) error {
		var rec userRecord
		if found, err := get(tx, bucketUsers, []byte(username), &rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "user %q not found", username)
		}
		rec.Hash, rec.UpdatedAt = hash, db.now().UTC()
		if err := put(tx, bucketUsers, []byte(username), &rec); err != nil {
			return err
		}
		return endSessionsOf(tx, username)
	})
}

// CheckPassword returns the user if password is its password. An unknown
// username is checked against a dummy hash, so it takes as long as a wrong
// password and answers the same.
func (db *DB) CheckPassword(ctx context.Context, username, password string) (*loa.User, error) {
	wrong := loa.Errorf(loa.EUNAUTHORIZED, "wrong username or password")
	var rec userRecord
	var found bool
	if len(username) <= loa.MaxUsername {
		err := db.view(ctx, func(tx *bolt.Tx) (err error) {
			found, err = get(tx, bucketUsers, []byte(username), &rec)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if !found {
		passwordMatches(dummyHash(), password)
		return nil, wrong
	}
	// No shortcut for an over-long password: it would answer a known
	// username faster than an unknown one.
	if !passwordMatches(rec.Hash, password) {
		return nil, wrong
	}
	if rec.Disabled {
		return nil, loa.Errorf(loa.EFORBIDDEN, "user %s is disabled; ask an admin", username)
	}
	return &rec.User, nil
}

// StartSession starts a sign-in session for username and returns its id
// (for the cookie) and its CSRF token. It drops the ended sessions it
// finds, so the bucket holds live ones only.
func (db *DB) StartSession(ctx context.Context, username string, now time.Time) (id, csrf string, err error) {
	id = base64.RawURLEncoding.EncodeToString(randomBytes(loa.SessionIDBytes))
	csrf = base64.RawURLEncoding.EncodeToString(randomBytes(32))
	err = db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketUsers).Get([]byte(username)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "user %q not found", username)
		}
		b := tx.Bucket(bucketUserSessions)
		var ended [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var s sessionRecord
			if json.Unmarshal(v, &s) != nil || sessionEnded(&s, now) {
				ended = append(ended, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range ended {
			if err := tx.del(bucketUserSessions, k); err != nil {
				return err
			}
		}
		at := now.UTC()
		return put(tx, bucketUserSessions, sessionKey(id), &sessionRecord{Username: username, CSRF: csrf, CreatedAt: at, LastSeen: at})
	})
	if err != nil {
		return "", "", err
	}
	return id, csrf, nil
}

// SessionUser returns the user of session id and its CSRF token, and
// notes its use (at most once a sessionTouchEvery).
func (db *DB) SessionUser(ctx context.Context, id string, now time.Time) (*loa.User, string, error) {
	ended := loa.Errorf(loa.EUNAUTHENTICATED, "your sign-in session has ended; sign in again")
	if len(id) > 64 {
		return nil, "", ended
	}
	key := sessionKey(id)
	var s sessionRecord
	var u userRecord
	var found, gone bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		if found, err = get(tx, bucketUserSessions, key, &s); err != nil || !found {
			return err
		}
		ok, err := get(tx, bucketUsers, []byte(s.Username), &u)
		gone = !ok
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", ended
	}
	if gone || u.Disabled || sessionEnded(&s, now) {
		_ = db.EndSession(ctx, id)
		return nil, "", ended
	}
	if now.Sub(s.LastSeen) >= sessionTouchEvery {
		// Best effort: a disk that refuses writes must not refuse reads;
		// the next request tries again.
		err := db.update(ctx, func(tx *wtx) error {
			var cur sessionRecord
			if found, err := get(tx, bucketUserSessions, key, &cur); err != nil || !found {
				return err
			}
			cur.LastSeen = now.UTC()
			return put(tx, bucketUserSessions, key, &cur)
		})
		switch {
		case loa.ErrorCode(err) == loa.EUNAVAILABLE:
			// A cluster follower: the leader notes use of the requests
			// it answers (every change), the follower's reads are not.
			db.log.Debug("a sign-in session's last use was not recorded", "user", s.Username, "err", err)
		case err != nil:
			db.log.Warn("a sign-in session's last use was not recorded", "user", s.Username, "err", err)
		}
	}
	return &u.User, s.CSRF, nil
}

// EndSession ends session id; an unknown one is no error.
func (db *DB) EndSession(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		return tx.del(bucketUserSessions, sessionKey(id))
	})
}

// sessionEnded reports whether s is past its idle or absolute timeout.
func sessionEnded(s *sessionRecord, now time.Time) bool {
	return !now.Before(s.LastSeen.Add(loa.SessionIdle)) || !now.Before(s.CreatedAt.Add(loa.SessionMaxAge))
}

// endSessionsOf deletes every session of username.
func endSessionsOf(tx *wtx, username string) error {
	b := tx.Bucket(bucketUserSessions)
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var s sessionRecord
		if json.Unmarshal(v, &s) != nil || s.Username == username {
			keys = append(keys, k) // an unreadable one ends too
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.del(bucketUserSessions, k); err != nil {
			return err
		}
	}
	return nil
}

func sessionKey(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return []byte(hex.EncodeToString(sum[:]))
}
