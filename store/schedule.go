package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// Schedules are stored as given: validating the rule, content and targets
// is the scheduler's job, done by the caller before it writes. The store
// checks only the id, so a schedule can always be found and deleted again.

// PutSchedule inserts s, or replaces the schedule with its id.
func (db *DB) PutSchedule(ctx context.Context, s *loa.Schedule) error {
	if err := checkSchedule(s); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		return put(tx, bucketSchedules, []byte(s.ID), s)
	})
}

// CreateSchedule stores a new schedule; ECONFLICT if the id is taken.
func (db *DB) CreateSchedule(ctx context.Context, s *loa.Schedule) error {
	if err := checkSchedule(s); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketSchedules).Get([]byte(s.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "schedule %q already exists", s.ID)
		}
		return put(tx, bucketSchedules, []byte(s.ID), s)
	})
}

func checkSchedule(s *loa.Schedule) error {
	if s == nil {
		return loa.Errorf(loa.EINVALID, "schedule: required")
	}
	return loa.ValidateID("id", s.ID)
}

// DeleteSchedule removes the schedule with id; ENOTFOUND if there is none.
func (db *DB) DeleteSchedule(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketSchedules)
		if id == "" || b.Get([]byte(id)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
		}
		return tx.del(bucketSchedules, []byte(id))
	})
}

// Schedule returns the schedule with id, ENOTFOUND if there is none.
func (db *DB) Schedule(ctx context.Context, id string) (*loa.Schedule, error) {
	s := new(loa.Schedule)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if id == "" {
			return loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
		}
		found, err := get(tx, bucketSchedules, []byte(id), s)
		if err == nil && !found {
			err = loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Schedules returns every schedule, by id.
func (db *DB) Schedules(ctx context.Context) ([]*loa.Schedule, error) {
	return listAll[loa.Schedule](ctx, db, bucketSchedules)
}

// MaxCalendarName is the longest calendar name, in bytes.
const MaxCalendarName = 100

// PutCalendar inserts c, or replaces the calendar with its name. Names are
// free text ("Tết 2027"), 1–100 bytes of UTF-8; the dates are stored as
// given (the scheduler validates them).
func (db *DB) PutCalendar(ctx context.Context, c loa.Calendar) error {
	if err := loa.ValidateName("name", c.Name, true); err != nil {
		return err
	}
	if len(c.Name) > MaxCalendarName {
		return loa.Errorf(loa.EINVALID, "name: at most %d bytes", MaxCalendarName)
	}
	return db.update(ctx, func(tx *wtx) error {
		if c.AreaID != "" {
			if err := areaExists(tx, "area_id", c.AreaID); err != nil {
				return err
			}
		}
		return put(tx, bucketCalendars, []byte(c.Name), &c)
	})
}

// Calendars returns every calendar by name; an empty map if there are none.
func (db *DB) Calendars(ctx context.Context) (loa.Calendars, error) {
	cs := loa.Calendars{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCalendars).ForEach(func(k, v []byte) error {
			var c loa.Calendar
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketCalendars, k, err)
			}
			cs[string(k)] = c // string(k) copies out of bbolt's memory
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}
