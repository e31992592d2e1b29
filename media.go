package loa

import (
	"context"
	"io"
	"time"
)

// Media is an audio item in the library, stored once as Ogg Opus
// (48 kHz mono, 20 ms frames) in a file named by its content hash.
type Media struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Hash       string        `json:"hash"` // hex SHA-256 of the stored Ogg Opus file
	Size       int64         `json:"size"` // bytes of the stored file
	Duration   time.Duration `json:"duration_ns"`
	Frames     int           `json:"frames"`      // 20 ms Opus packets
	Source     string        `json:"source"`      // format the upload was in: wav, mp3, opus
	LoudnessDB float64       `json:"loudness_db"` // measured before normalising
	CreatedAt  time.Time     `json:"created_at"`
	CreatedBy  string        `json:"created_by,omitempty"`
	// State is MediaDraft while an approver has not approved the upload
	// (nothing may play or schedule it); "" once it may be used.
	State      string `json:"state,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"` // who approved it, when it was held
	// Decoder is what decoded the upload: "builtin:wav", "builtin:mp3",
	// "builtin:opus", or ffmpeg's decoder ("ffmpeg:aac", "ffmpeg:vorbis",
	// …) for the formats Source names beyond those. Empty on items
	// imported before it was recorded.
	Decoder string `json:"decoder,omitempty"`
}

// MediaDraft is the State of a held upload.
const MediaDraft = "draft"

// MediaService imports and lists media.
type MediaService interface {
	// ImportMedia decodes an upload, normalises and encodes it to Ogg Opus
	// and stores it. Bad input is EINVALID/EUNSUPPORTED/ETOOLARGE and
	// stores nothing.
	ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*Media, error)
	Media(ctx context.Context, id string) (*Media, error)
	MediaList(ctx context.Context) ([]*Media, error)
}
