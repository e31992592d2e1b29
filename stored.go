package loa

import (
	"context"
	"io"
	"time"
)

// Stored alert message codes: a short number a trigger names (an alert's
// stored_code, an SMS).
const (
	MinStoredCode = 1
	MaxStoredCode = 999
)

// StoredMessage is a standard warning of the library (bão, lũ quét, sạt
// lở, …): a media item under a code. The controller pre-delivers it to
// every receiver of its area and below that announces the cache, so an
// alert can later say "play stored message N" and sound at once from the
// receivers' own storage.
type StoredMessage struct {
	Code     int    `json:"code"` // 1–999, unique in the station
	Name     string `json:"name"`
	MediaID  string `json:"media_id"`
	Category string `json:"category,omitempty"` // free text: storm, flood, landslide, …
	// AreaID is where it is delivered: receivers in this area and below.
	AreaID string `json:"area_id"`
	// SHA256, Size and Frames are the media's Ogg Opus file, which
	// receivers hold; filled in by the service.
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Frames    int       `json:"frames"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Validate checks what a caller gives (code, name, media, category, area).
func (m *StoredMessage) Validate() error {
	if m.Code < MinStoredCode || m.Code > MaxStoredCode {
		return Errorf(EINVALID, "code: must be within %d..%d, not %d", MinStoredCode, MaxStoredCode, m.Code)
	}
	if err := ValidateName("name", m.Name, true); err != nil {
		return err
	}
	if err := ValidateID("media_id", m.MediaID); err != nil {
		return err
	}
	if err := ValidateName("category", m.Category, false); err != nil {
		return err
	}
	return ValidateID("area_id", m.AreaID)
}

// CacheStats is what a receiver's cache holds, as it reports it
// (contract v2, tele.cache): the set version it holds, and how many items
// of that set it lacks.
type CacheStats struct {
	Version int64    `json:"version"`
	Held    []string `json:"held"` // kind:key, e.g. "stored:12"
	Missing int      `json:"missing"`
	Bytes   int64    `json:"bytes"`
	Budget  int64    `json:"budget"`
}

// StoredMessageService keeps the library of stored alert messages and
// the receivers' copies of it.
type StoredMessageService interface {
	StoredMessages(ctx context.Context) ([]*StoredMessage, error)
	StoredMessage(ctx context.Context, code int) (*StoredMessage, error)
	// PutStoredMessage creates or replaces the message of m.Code; the
	// media and area must exist (ENOTFOUND naming the field).
	PutStoredMessage(ctx context.Context, m *StoredMessage) error
	DeleteStoredMessage(ctx context.Context, code int) error
	// OpenCacheItem opens the file of a library item by its SHA-256, for
	// receivers' downloads; ENOTFOUND for anything not in the library.
	OpenCacheItem(ctx context.Context, sha256 string) (io.ReadSeekCloser, error)
}
