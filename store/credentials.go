package store

import (
	"context"

	"github.com/loa-broadcast/loa"
)

// RevokeDeviceCredentials deletes device id's password, so no password
// works for it any more, and records the device as revoked; it stays
// registered. Revoking a revoked device changes nothing. ENOTFOUND if no
// such device. It returns the device as stored.
func (db *DB) RevokeDeviceCredentials(ctx context.Context, id string) (*loa.Device, error) {
	d := new(loa.Device)
	err := db.update(ctx, func(tx *wtx) error {
		if found, err := get(tx, bucketDevices, []byte(id), d); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
		}
		if d.Credentials == loa.CredentialsRevoked {
			return nil
		}
		d.Credentials, d.RevokedAt = loa.CredentialsRevoked, db.now().UTC()
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
