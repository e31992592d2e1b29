package loa

import (
	"cmp"
	"fmt"
	"strings"
)

// EINUSE refuses deleting something that other things still use; the
// error (an *InUseError) names them.
const EINUSE = "in_use"

// Kinds of MediaUse.
const (
	UsePlaylist = "playlist"
	UseSchedule = "schedule"
	UseAlert    = "alert"
	UseFallback = "fallback"
	UseSession  = "session"
	UseRelay    = "relay" // its fallback media
)

// MediaUse is one thing that plays a media item: a playlist, a schedule
// (its content or a date's replacement), an active alert, an area's
// fallback or a session playing now. Name is its name where it has one
// (the area's id for a fallback).
type MediaUse struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// InUseError is EINUSE with the uses that keep a media item: the API
// answers them as "used_by", so the console can name them in words.
type InUseError struct {
	Err  *Error
	Uses []MediaUse
}

// NewInUseError refuses deleting media id for uses.
func NewInUseError(id string, uses []MediaUse) *InUseError {
	names := make([]string, 0, len(uses))
	for _, u := range uses {
		names = append(names, fmt.Sprintf("%s %q", u.Kind, cmp.Or(u.Name, u.ID)))
	}
	return &InUseError{Err: Errorf(EINUSE, "media %q is used by %s; remove it from them first", id, strings.Join(names, ", ")), Uses: uses}
}

func (e *InUseError) Error() string { return e.Err.Error() }
func (e *InUseError) Unwrap() error { return e.Err }
