package store

import (
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// RenameMedia gives media id a new name (validated by the caller) and
// returns it; ENOTFOUND if there is none.
func (db *DB) RenameMedia(ctx context.Context, id, name string) (*loa.Media, error) {
	if len(name) > 200 {
		return nil, loa.Errorf(loa.EINVALID, "name: at most 200 bytes")
	}
	var m *loa.Media
	err := db.update(ctx, func(tx *wtx) (err error) {
		if m, err = media(tx, id); err != nil {
			return err
		}
		m.Name = name
		return put(tx, bucketMedia, []byte(id), m)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteMedia removes media id's record and hash index entry, in one
// transaction with the check that nothing uses it (MediaUses): an
// *loa.InUseError naming the uses otherwise. It returns the removed item;
// its blob is the caller's to remove.
func (db *DB) DeleteMedia(ctx context.Context, id string) (*loa.Media, error) {
	var m *loa.Media
	err := db.update(ctx, func(tx *wtx) (err error) {
		if m, err = media(tx, id); err != nil {
			return err
		}
		uses, err := mediaUses(tx, id)
		if err != nil {
			return err
		}
		if len(uses) > 0 {
			return loa.NewInUseError(id, uses)
		}
		if err := tx.del(bucketMedia, []byte(id)); err != nil {
			return err
		}
		return tx.del(bucketMediaByHash, []byte(m.Hash))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// MediaUses lists what plays media id: playlists, schedules (content or
// a date's replacement), active alerts, fallbacks, relays (their fallback)
// and playing sessions.
func (db *DB) MediaUses(ctx context.Context, id string) (uses []loa.MediaUse, err error) {
	err = db.view(ctx, func(tx *bolt.Tx) error {
		uses, err = mediaUses(tx, id)
		return err
	})
	return uses, err
}

func mediaUses(tx rtx, id string) ([]loa.MediaUse, error) {
	var uses []loa.MediaUse
	playlists, err := list[loa.Playlist](tx, bucketPlaylists)
	if err != nil {
		return nil, err
	}
	for _, p := range playlists {
		if slices.ContainsFunc(p.Items, func(it loa.PlaylistItem) bool { return it.MediaID == id }) {
			uses = append(uses, loa.MediaUse{Kind: loa.UsePlaylist, ID: p.ID, Name: p.Name})
		}
	}
	schedules, err := list[loa.Schedule](tx, bucketSchedules)
	if err != nil {
		return nil, err
	}
	for _, s := range schedules {
		used := s.Content.MediaID == id
		for _, r := range s.Exceptions.Replace {
			used = used || r.MediaID == id
		}
		if used {
			uses = append(uses, loa.MediaUse{Kind: loa.UseSchedule, ID: s.ID, Name: s.Name})
		}
	}
	alerts, err := list[loa.Alert](tx, bucketAlerts)
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		if a.State == loa.AlertActive && a.Content.MediaID == id {
			uses = append(uses, loa.MediaUse{Kind: loa.UseAlert, ID: a.ID, Name: a.Title})
		}
	}
	fallbacks, err := list[loa.Fallback](tx, bucketFallbacks)
	if err != nil {
		return nil, err
	}
	for _, f := range fallbacks {
		if f.Content.MediaID == id {
			uses = append(uses, loa.MediaUse{Kind: loa.UseFallback, ID: f.AreaID})
		}
	}
	if tx.Bucket(bucketRelays) != nil {
		relays, err := list[loa.Relay](tx, bucketRelays)
		if err != nil {
			return nil, err
		}
		for _, r := range relays {
			if r.FallbackMediaID == id {
				uses = append(uses, loa.MediaUse{Kind: loa.UseRelay, ID: r.ID, Name: r.Name})
			}
		}
	}
	sessions, err := list[loa.Session](tx, bucketSessions)
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.State == loa.SessionPlaying && s.MediaID == id {
			uses = append(uses, loa.MediaUse{Kind: loa.UseSession, ID: s.ID})
		}
	}
	return uses, nil
}
