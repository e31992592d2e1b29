package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// CreateDevice registers d in an existing area, sets d.CreatedAt and returns
// a new random MQTT password. Only the password's SHA-256 is stored.
func (db *DB) CreateDevice(ctx context.Context, d *loa.Device) (password string, err error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	password = newDevicePassword()
	err = db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketDevices).Get([]byte(d.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "id: device %q already exists", d.ID)
		}
		if err := areaExists(tx, "area_id", d.AreaID); err != nil {
			return err
		}
		d.CreatedAt = db.now().UTC()
		d.Credentials, d.RotatedAt, d.RevokedAt = loa.CredentialsActive, time.Time{}, time.Time{}
		if err := put(tx, bucketDevices, []byte(d.ID), d); err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(password))
		return tx.put(bucketDeviceCreds, []byte(d.ID), sum[:])
	})
	if err != nil {
		return "", err
	}
	return password, nil
}

// Device returns the device with id, ENOTFOUND if there is none.
func (db *DB) Device(ctx context.Context, id string) (*loa.Device, error) {
	d, err := getOne[loa.Device](ctx, db, bucketDevices, "device", id)
	if err != nil {
		return nil, err
	}
	credentialsState(d)
	return d, nil
}

// credentialsState fills in the credentials state of a device stored
// before it was recorded: it had the password issued at creation.
func credentialsState(d *loa.Device) {
	if d.Credentials == "" {
		d.Credentials = loa.CredentialsActive
	}
}

// Devices returns every device in service, sorted by id: the registry's
// active list, which target resolution and the fleet's watchers read.
// Decommissioned devices are left out; Device still answers them.
func (db *DB) Devices(ctx context.Context) ([]*loa.Device, error) {
	ds, err := listAll[loa.Device](ctx, db, bucketDevices)
	if err != nil {
		return nil, err
	}
	out := ds[:0]
	for _, d := range ds {
		if d.Decommissioned() {
			continue
		}
		credentialsState(d)
		out = append(out, d)
	}
	return out, nil
}

// DecommissionDevice takes device id out of service: its password is
// deleted (credentials revoked) and it leaves the active list (Devices),
// but its record stays, so its history remains readable and its id is
// not reused. ENOTFOUND if no such device, ECONFLICT if it is already
// decommissioned. It returns the device as stored.
func (db *DB) DecommissionDevice(ctx context.Context, id string) (*loa.Device, error) {
	d := new(loa.Device)
	err := db.update(ctx, func(tx *wtx) error {
		if found, err := get(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
		}
		if d.Decommissioned() {
			return loa.Errorf(loa.ECONFLICT, "device %q was decommissioned at %s", id, d.DecommissionedAt.Format(time.RFC3339))
		}
		now := db.now().UTC()
		if d.Credentials != loa.CredentialsRevoked {
			d.Credentials, d.RevokedAt = loa.CredentialsRevoked, now
		}
		d.DecommissionedAt = now
		if err := put(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		}
		return tx.del(bucketDeviceCreds, []byte(id))
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SetDeviceOffset sets device id's delay offset (play.offset_ms of its
// next plays) and returns the device as stored. ENOTFOUND if no such
// device, ECONFLICT if it is decommissioned, EINVALID outside the bounds.
func (db *DB) SetDeviceOffset(ctx context.Context, id string, offsetMs int) (*loa.Device, error) {
	d := new(loa.Device)
	err := db.update(ctx, func(tx *wtx) error {
		if found, err := get(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
		}
		if d.Decommissioned() {
			return loa.Errorf(loa.ECONFLICT, "device %q is decommissioned", id)
		}
		d.OffsetMs = offsetMs
		if err := d.Validate(); err != nil {
			return err
		}
		return put(tx, bucketDevices, []byte(id), d)
	})
	if err != nil {
		return nil, err
	}
	credentialsState(d)
	return d, nil
}

// CheckDeviceCredentials reports whether password is device id's current
// password. An unknown device or a wrong password is false with no error,
// so callers cannot tell the two apart.
func (db *DB) CheckDeviceCredentials(ctx context.Context, id, password string) (bool, error) {
	got := sha256.Sum256([]byte(password))
	var want [sha256.Size]byte
	var known bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDeviceCreds).Get([]byte(id)); len(v) == sha256.Size {
			copy(want[:], v)
			known = true
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	// Compare even for unknown devices so timing does not reveal which exist.
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	return known && match, nil
}

// ResetDeviceCredentials replaces device id's password with a new random
// one and returns it; the old one stops working. A revoked device becomes
// active again with it. It records RotatedAt. ENOTFOUND if no such device,
// ECONFLICT if it is decommissioned.
func (db *DB) ResetDeviceCredentials(ctx context.Context, id string) (password string, err error) {
	password = newDevicePassword()
	err = db.update(ctx, func(tx *wtx) error {
		d := new(loa.Device)
		if found, err := get(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
		}
		if d.Decommissioned() {
			return loa.Errorf(loa.ECONFLICT, "device %q is decommissioned; register a new device instead", id)
		}
		d.Credentials, d.RotatedAt, d.RevokedAt = loa.CredentialsActive, db.now().UTC(), time.Time{}
		if err := put(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(password))
		return tx.put(bucketDeviceCreds, []byte(id), sum[:])
	})
	if err != nil {
		return "", err
	}
	return password, nil
}

// newDevicePassword returns 128 random bits as 32 hex characters: easy to
// type into a receiver's config page, safe in any MQTT client.
func newDevicePassword() string {
	return hex.EncodeToString(randomBytes(16))
}

// randomBytes returns n bytes from crypto/rand, which never fails on
// supported platforms (it panics internally if the OS source is broken).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
