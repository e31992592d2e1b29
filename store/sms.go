package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// SMS triggers (contract v2, sms): the station's sequence number, the
// receivers' modem numbers and the keys of their replies.

var keySMSSeq = []byte("sms_seq")

// NextSMSSeq increments the station's SMS trigger sequence number, kept
// in the meta bucket (so across restarts and in backups), and returns
// the new value (1 on a new database): receivers refuse a trigger whose
// number is not above the highest they accepted.
func (db *DB) NextSMSSeq(ctx context.Context) (uint32, error) {
	var seq uint32
	err := db.update(ctx, func(tx *wtx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySMSSeq); v != nil {
			if len(v) != 4 {
				return fmt.Errorf("meta sms_seq is %d bytes, want 4", len(v))
			}
			seq = binary.BigEndian.Uint32(v)
		}
		if seq == 1<<32-1 {
			return loa.Errorf(loa.ECONFLICT, "the SMS sequence numbers are spent")
		}
		seq++
		return tx.put(bucketMeta, keySMSSeq, binary.BigEndian.AppendUint32(nil, seq))
	})
	if err != nil {
		return 0, fmt.Errorf("store: next sms seq: %w", err)
	}
	return seq, nil
}

// SetDeviceMSISDN sets device id's modem number ("" removes it) and
// returns the device as stored. ENOTFOUND if no such device, ECONFLICT
// if it is decommissioned, EINVALID if the number is not E.164.
func (db *DB) SetDeviceMSISDN(ctx context.Context, id, msisdn string) (*loa.Device, error) {
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
		d.MSISDN = msisdn
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

// DevicePasswordHash returns the SHA-256 of device id's current MQTT
// password, from which its SMS reply key is derived
// (protocol.SMSReplyKey). ENOTFOUND if the device has no password (none,
// revoked, or pending enrolment).
func (db *DB) DevicePasswordHash(ctx context.Context, id string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	found := false
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDeviceCreds).Get([]byte(id)); len(v) == sha256.Size {
			copy(sum[:], v)
			found = true
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	if !found {
		return sum, loa.Errorf(loa.ENOTFOUND, "device %q has no credentials", id)
	}
	return sum, nil
}
