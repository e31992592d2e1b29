package loa

import "context"

// DefaultFallbackPriority is where an area's background programme plays.
const DefaultFallbackPriority Priority = 16

// Fallback is an area's background programme: it loops in the background
// band while nothing else targets the area's receivers, and anything
// preempts it.
type Fallback struct {
	AreaID   string   `json:"area_id"`
	Content  Content  `json:"content"`
	Priority Priority `json:"priority"`
}

// Validate checks the fallback's own fields.
func (f *Fallback) Validate() error {
	if err := ValidateID("area_id", f.AreaID); err != nil {
		return err
	}
	if (f.Content.MediaID == "") == (f.Content.PlaylistID == "") {
		return Errorf(EINVALID, "content: name a media_id or a playlist_id")
	}
	if f.Priority >= PriorityNormal {
		return Errorf(EINVALID, "priority: a fallback plays in the background band, 0–%d", PriorityNormal-1)
	}
	return nil
}

// FallbackService keeps the areas' background programmes playing.
type FallbackService interface {
	SetFallback(ctx context.Context, f *Fallback) error
	ClearFallback(ctx context.Context, areaID string) error
	Fallbacks(ctx context.Context) ([]*Fallback, error)
}
