package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
)

// claimRecord is a Claim as stored: loa.Claim hides its hash from JSON so
// it never reaches an API answer, but the store must keep it.
type claimRecord struct {
	loa.Claim
	Hash string `json:"hash"`
}

// CreateClaim stores claim c of the code whose hash is c.Hash, setting
// c.ID (if empty) and c.CreatedAt.
//
// A new device (c.Replace false) is registered as d in the same
// transaction, with no password (CredentialsPending): ECONFLICT if the id
// exists. A swap (c.Replace true) names an existing device in service in
// c.DeviceID (d is unused): its password is deleted at once (revoked), so
// the old unit is refused from now on; ENOTFOUND if there is no such
// device, ECONFLICT if it is decommissioned or already has a claim
// waiting. A code claimed before, whichever scope it was claimed in, is
// ECONFLICT without saying where.
func (db *DB) CreateClaim(ctx context.Context, c *loa.Claim, d *loa.Device) error {
	if c.ID == "" {
		c.ID = "clm-" + hex.EncodeToString(randomBytes(8))
	}
	if err := loa.ValidateID("id", c.ID); err != nil {
		return err
	}
	if len(c.Hash) != 2*sha256.Size {
		return loa.Errorf(loa.EINVALID, "claim code: hash missing")
	}
	if !c.Replace {
		if err := d.Validate(); err != nil {
			return err
		}
		c.DeviceID, c.AreaID = d.ID, d.AreaID
	}
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketClaimsByHash).Get([]byte(c.Hash)) != nil {
			return loa.Errorf(loa.ECONFLICT, "claim_code: this code is already claimed; cancel that claim first")
		}
		if tx.Bucket(bucketClaims).Get([]byte(c.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "id: claim %q already exists", c.ID)
		}
		now := db.now().UTC()
		if c.Replace {
			old := new(loa.Device)
			if found, err := get(tx, bucketDevices, []byte(c.DeviceID), old); err != nil {
				return err
			} else if !found {
				return loa.Errorf(loa.ENOTFOUND, "device %q not found", c.DeviceID)
			}
			if old.Decommissioned() {
				return loa.Errorf(loa.ECONFLICT, "device %q was decommissioned at %s", old.ID, old.DecommissionedAt.Format(time.RFC3339))
			}
			if id := tx.Bucket(bucketClaimsPendingBy).Get([]byte(old.ID)); id != nil {
				return loa.Errorf(loa.ECONFLICT, "device %q already waits for a box to enrol (claim %s); cancel that claim first", old.ID, id)
			}
			c.AreaID = old.AreaID
			if old.Credentials != loa.CredentialsRevoked {
				old.Credentials, old.RevokedAt = loa.CredentialsRevoked, now
			}
			if err := put(tx, bucketDevices, []byte(old.ID), old); err != nil {
				return err
			}
			if err := tx.del(bucketDeviceCreds, []byte(old.ID)); err != nil {
				return err
			}
		} else {
			if tx.Bucket(bucketDevices).Get([]byte(d.ID)) != nil {
				return loa.Errorf(loa.ECONFLICT, "device_id: device %q already exists", d.ID)
			}
			if err := areaExists(tx, "area_id", d.AreaID); err != nil {
				return err
			}
			d.CreatedAt = now
			d.Credentials, d.RotatedAt, d.RevokedAt, d.EnrolledAt = loa.CredentialsPending, time.Time{}, time.Time{}, time.Time{}
			if err := put(tx, bucketDevices, []byte(d.ID), d); err != nil {
				return err
			}
		}
		c.CreatedAt, c.EnrolledAt = now, time.Time{}
		if err := put(tx, bucketClaims, []byte(c.ID), &claimRecord{Claim: *c, Hash: c.Hash}); err != nil {
			return err
		}
		if err := tx.put(bucketClaimsByHash, []byte(c.Hash), []byte(c.ID)); err != nil {
			return err
		}
		return tx.put(bucketClaimsPendingBy, []byte(c.DeviceID), []byte(c.ID))
	})
}

// Claim returns the claim with id, ENOTFOUND if there is none.
func (db *DB) Claim(ctx context.Context, id string) (*loa.Claim, error) {
	rec, err := getOne[claimRecord](ctx, db, bucketClaims, "claim", id)
	if err != nil {
		return nil, err
	}
	rec.Claim.Hash = rec.Hash
	return &rec.Claim, nil
}

// Claims returns every claim, the newest first.
func (db *DB) Claims(ctx context.Context) ([]*loa.Claim, error) {
	recs, err := listAll[claimRecord](ctx, db, bucketClaims)
	if err != nil {
		return nil, err
	}
	out := make([]*loa.Claim, len(recs))
	for i, r := range recs {
		r.Claim.Hash = r.Hash
		out[i] = &r.Claim
	}
	slices.SortStableFunc(out, func(a, b *loa.Claim) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// DeleteClaim removes claim id and returns it. A pending claim is
// cancelled: the box's code gets nothing, and the device a new-device
// claim registered is removed too (it never had a password, so it has
// no history); a swapped device stays revoked. An enrolled claim is
// forgotten, so the same code may be claimed again (a box reset to its
// factory state); the device keeps its credentials. ENOTFOUND if none.
func (db *DB) DeleteClaim(ctx context.Context, id string) (*loa.Claim, error) {
	rec := new(claimRecord)
	err := db.update(ctx, func(tx *wtx) error {
		if found, err := get(tx, bucketClaims, []byte(id), rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "claim %q not found", id)
		}
		if !rec.Enrolled() {
			if err := tx.del(bucketClaimsPendingBy, []byte(rec.DeviceID)); err != nil {
				return err
			}
			d := new(loa.Device)
			found, err := get(tx, bucketDevices, []byte(rec.DeviceID), d)
			if err != nil {
				return err
			}
			if found && !rec.Replace && d.Credentials == loa.CredentialsPending {
				for _, b := range [][]byte{bucketDevices, bucketDeviceStates, bucketDeviceCreds} {
					if err := tx.del(b, []byte(rec.DeviceID)); err != nil {
						return err
					}
				}
			}
		}
		if err := tx.del(bucketClaimsByHash, []byte(rec.Hash)); err != nil {
			return err
		}
		return tx.del(bucketClaims, []byte(id))
	})
	if err != nil {
		return nil, err
	}
	rec.Claim.Hash = rec.Hash
	return &rec.Claim, nil
}

// EnrolClaim consumes the claim of the code whose hash is hash, in one
// transaction: the claimed device gets password (only its SHA-256 is
// kept) and becomes active, and the claim is marked enrolled, so a second
// call gets EGONE. An unknown hash is ENOTFOUND ("not claimed yet": a code
// not claimed and a wrong code look the same). It returns the claim and
// the device as stored.
func (db *DB) EnrolClaim(ctx context.Context, hash, password string) (*loa.Claim, *loa.Device, error) {
	rec, d := new(claimRecord), new(loa.Device)
	err := db.update(ctx, func(tx *wtx) error {
		id := tx.Bucket(bucketClaimsByHash).Get([]byte(hash))
		if id == nil {
			return loa.Errorf(loa.ENOTFOUND, "not claimed yet")
		}
		if found, err := get(tx, bucketClaims, id, rec); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "not claimed yet")
		}
		if rec.Enrolled() {
			return loa.Errorf(loa.EGONE, "this claim code was used at %s; a technician must claim the box again", rec.EnrolledAt.Format(time.RFC3339))
		}
		if found, err := get(tx, bucketDevices, []byte(rec.DeviceID), d); err != nil {
			return err
		} else if !found || d.Decommissioned() {
			return loa.Errorf(loa.EGONE, "the device this code was claimed for is out of service; a technician must claim the box again")
		}
		now := db.now().UTC()
		if d.Credentials != loa.CredentialsPending {
			d.RotatedAt = now // a swap: the device's password is replaced
		}
		d.Credentials, d.RevokedAt, d.EnrolledAt = loa.CredentialsActive, time.Time{}, now
		if err := put(tx, bucketDevices, []byte(d.ID), d); err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(password))
		if err := tx.put(bucketDeviceCreds, []byte(d.ID), sum[:]); err != nil {
			return err
		}
		rec.EnrolledAt = now
		if err := put(tx, bucketClaims, id, rec); err != nil {
			return err
		}
		return tx.del(bucketClaimsPendingBy, []byte(d.ID))
	})
	if err != nil {
		return nil, nil, err
	}
	rec.Claim.Hash = rec.Hash
	return &rec.Claim, d, nil
}

// NewDevicePassword returns a fresh random MQTT password, in the form
// CreateDevice issues.
func NewDevicePassword() string { return newDevicePassword() }
