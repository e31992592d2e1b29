package loa

// Priority orders sessions competing for a receiver: 0–255, higher wins.
// The bands follow Thông tư 39/2020/TT-BTTTT plus a background band.
type Priority uint8

// Band boundaries (inclusive lower bounds).
const (
	PriorityBackground Priority = 0
	PriorityNormal     Priority = 32
	PriorityHigh       Priority = 128 // ưu tiên
	PriorityEmergency  Priority = 224 // khẩn cấp
)

// Band names.
const (
	BandBackground = "background"
	BandNormal     = "normal"
	BandPriority   = "priority"
	BandEmergency  = "emergency"
)

// Band returns the name of the band p falls in.
func (p Priority) Band() string {
	switch {
	case p >= PriorityEmergency:
		return BandEmergency
	case p >= PriorityHigh:
		return BandPriority
	case p >= PriorityNormal:
		return BandNormal
	default:
		return BandBackground
	}
}

// Emergency reports whether p is in the emergency band, where the newest
// session wins at equal priority and receiver volume and mute are overridden.
func (p Priority) Emergency() bool { return p >= PriorityEmergency }

// Preempts reports whether a new session at priority p takes a receiver
// from a session already playing at priority cur.
func (p Priority) Preempts(cur Priority) bool {
	if p != cur {
		return p > cur
	}
	return p.Emergency()
}
