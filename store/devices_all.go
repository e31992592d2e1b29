package store

import (
	"context"

	"github.com/loa-broadcast/loa"
)

// AllDevices returns every device ever registered, decommissioned ones
// too, sorted by id: reports count a receiver's history over the months it
// was in service.
func (db *DB) AllDevices(ctx context.Context) ([]*loa.Device, error) {
	ds, err := listAll[loa.Device](ctx, db, bucketDevices)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		credentialsState(d)
	}
	return ds, nil
}
