package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loa-broadcast/loa"
)

// PutGroupCommand inserts or updates a group command with all its results.
// The controller writes it twice: when created and when settled, never per
// ack, so a command to thousands of devices costs two transactions.
func (db *DB) PutGroupCommand(ctx context.Context, g *loa.GroupCommand) error {
	if err := validKey("id", g.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		return put(tx, bucketGroupCommands, []byte(g.ID), g)
	})
}

// GroupCommand returns the group command with id, ENOTFOUND if there is none.
func (db *DB) GroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
	return getOne[loa.GroupCommand](ctx, db, bucketGroupCommands, "group command", id)
}

// SettleInterruptedGroupCommands settles the group commands a previous run
// left running (it stopped before their acks came): their pending results
// become timeout with msg, in one transaction. It returns how many it
// settled.
func (db *DB) SettleInterruptedGroupCommands(ctx context.Context, at time.Time, msg string) (int, error) {
	n := 0
	err := db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketGroupCommands)
		var running [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var head struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(v, &head); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketGroupCommands, k, err)
			}
			if head.State == loa.GroupRunning {
				running = append(running, k) // keys are valid until the tx ends
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range running {
			g := new(loa.GroupCommand)
			if _, err := get(tx, bucketGroupCommands, k, g); err != nil {
				return err
			}
			for i := range g.Results {
				if r := &g.Results[i]; !r.Final() {
					r.State, r.Code, r.Msg = loa.GroupTimeout, loa.ETIMEOUT, msg
				}
			}
			g.State, g.SettledAt = loa.GroupDone, at.UTC()
			g.Count()
			if err := put(tx, bucketGroupCommands, k, g); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
