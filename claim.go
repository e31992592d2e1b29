package loa

import "time"

// Claim is a technician's claim of a receiver's claim code: the code a
// new box ships with (printed on its label) is bound to a device record
// in an area. The box, polling the enrolment route with its code, then
// receives that device's credentials once. Only the code's hash is kept.
type Claim struct {
	ID       string `json:"id"`
	DeviceID string `json:"device_id"`
	AreaID   string `json:"area_id"`
	// Replace is set when the claim swaps a unit: the box takes over an
	// existing device's identity, area and settings.
	Replace   bool      `json:"replace,omitempty"`
	CreatedBy string    `json:"created_by"` // token id
	CreatedAt time.Time `json:"created_at"`
	// EnrolledAt is when the box fetched its credentials, which consumes
	// the claim: the code gets nothing more.
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	Hash       string    `json:"-"` // protocol.ClaimCodeHash of the code
}

// Enrolled reports whether the box has fetched its credentials.
func (c *Claim) Enrolled() bool { return !c.EnrolledAt.IsZero() }
