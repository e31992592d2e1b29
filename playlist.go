package loa

import (
	"context"
	"time"
)

// MaxPlaylistItems bounds a playlist; a programme of more is a schedule.
const MaxPlaylistItems = 500

// Playlist is an ordered list of media items with optional silence after
// each. It plays as one session: one RTP stream, continuous timestamps.
type Playlist struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Items      []PlaylistItem `json:"items"`
	CreatedAt  time.Time      `json:"created_at"`
	CreatedBy  string         `json:"created_by,omitempty"`
	ApprovedBy string         `json:"approved_by,omitempty"` // who approved it, when it was held
}

// PlaylistItem is one entry of a playlist.
type PlaylistItem struct {
	MediaID string        `json:"media_id"`
	Gap     time.Duration `json:"gap_ns,omitempty"` // silence after the item
}

// Validate checks the playlist's own fields; that the media exist is
// checked by whoever can look them up.
func (p *Playlist) Validate() error {
	if err := ValidateID("id", p.ID); err != nil {
		return err
	}
	if err := ValidateName("name", p.Name, true); err != nil {
		return err
	}
	if len(p.Items) == 0 || len(p.Items) > MaxPlaylistItems {
		return Errorf(EINVALID, "items: 1 to %d media items", MaxPlaylistItems)
	}
	for i, it := range p.Items {
		if it.MediaID == "" {
			return Errorf(EINVALID, "items[%d].media_id: required", i)
		}
		if it.Gap < 0 || it.Gap > time.Hour {
			return Errorf(EINVALID, "items[%d].gap: must be within 0..1h", i)
		}
	}
	return nil
}

// PlaylistService keeps playlists.
type PlaylistService interface {
	CreatePlaylist(ctx context.Context, p *Playlist) error // sets CreatedAt; ECONFLICT if the id exists
	Playlist(ctx context.Context, id string) (*Playlist, error)
	Playlists(ctx context.Context) ([]*Playlist, error)
}
