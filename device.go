package loa

import (
	"context"
	"math"
	"strings"
	"time"
)

// Device is a smart receiver: a 4G/Ethernet box driving an amplifier and a
// cluster of horn speakers. Its credentials are stored hashed, never here.
type Device struct {
	ID        string    `json:"id"`
	AreaID    string    `json:"area_id"`
	Name      string    `json:"name"`
	Lat       float64   `json:"lat,omitempty"`
	Lon       float64   `json:"lon,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Credentials is CredentialsActive, CredentialsRevoked or
	// CredentialsPending (claimed, not enrolled yet); RotatedAt is when its
	// MQTT password was last replaced (zero: the one issued at creation),
	// RevokedAt when it was revoked, EnrolledAt when a box last fetched
	// its credentials with a claim code. Set by the store only.
	Credentials string    `json:"credentials"`
	RotatedAt   time.Time `json:"rotated_at,omitzero"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	EnrolledAt  time.Time `json:"enrolled_at,omitzero"`

	// DecommissionedAt is when the device left service: its credentials
	// are revoked, it is out of the registry's active list and of target
	// resolution, and its history (play log, health, alarms, audit) stays.
	DecommissionedAt time.Time `json:"decommissioned_at,omitzero"`

	// OffsetMs is the receiver's delay offset (contract v2, play.offset_ms):
	// it plays every session this much later (or earlier) than the
	// others, to time-align overlapping clusters as PA installers align
	// delay towers. MinOffsetMs..MaxOffsetMs, and with the station's
	// playout delay at least MinLeadMs.
	OffsetMs int `json:"offset_ms,omitempty"`

	// MSISDN is the number of the receiver's modem (E.164, "+84…"): the
	// controller sends it SMS triggers there when MQTT is down (contract
	// v2, sms). Empty: it gets no SMS.
	MSISDN string `json:"msisdn,omitempty"`
}

// ValidateMSISDN checks a modem number: empty, or E.164 ('+' and 8–15
// digits).
func ValidateMSISDN(n string) error {
	if n == "" {
		return nil
	}
	digits, ok := strings.CutPrefix(n, "+")
	if !ok || len(digits) < 8 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return Errorf(EINVALID, "msisdn: %q is not an E.164 number ('+' and 8–15 digits, e.g. +84912345678)", n)
	}
	return nil
}

// Bounds of a receiver's delay offset (the contract's, protocol.MinOffsetMs
// and friends): the playout delay plus the offset is never below
// MinLeadMs, so no receiver is asked to play audio before it can arrive.
const (
	MinOffsetMs = -150
	MaxOffsetMs = 500
	MinLeadMs   = 100
)

// ValidateOffset checks a delay offset against the bounds and the
// station's playout delay.
func ValidateOffset(offsetMs int, delay time.Duration) error {
	if offsetMs < MinOffsetMs || offsetMs > MaxOffsetMs {
		return Errorf(EINVALID, "offset_ms: %d is outside %d..%d", offsetMs, MinOffsetMs, MaxOffsetMs)
	}
	if d := int(delay / time.Millisecond); d+offsetMs < MinLeadMs {
		return Errorf(EINVALID, "offset_ms: the playout delay %d ms + %d ms is below %d ms: the receiver would have to play audio before it can arrive", d, offsetMs, MinLeadMs)
	}
	return nil
}

// Decommissioned reports whether the device has left service.
func (d *Device) Decommissioned() bool { return !d.DecommissionedAt.IsZero() }

// Device credential states.
const (
	CredentialsActive  = "active"  // the device may connect with its password
	CredentialsRevoked = "revoked" // no password works until new credentials are issued
	CredentialsPending = "pending" // claimed; no password yet: the box fetches one when it enrols
)

// Validate checks the device's own fields.
func (d *Device) Validate() error {
	if err := ValidateID("id", d.ID); err != nil {
		return err
	}
	if err := ValidateID("area_id", d.AreaID); err != nil {
		return err
	}
	if err := ValidateName("name", d.Name, false); err != nil {
		return err
	}
	if math.IsNaN(d.Lat) || d.Lat < -90 || d.Lat > 90 {
		return Errorf(EINVALID, "lat: must be within -90..90")
	}
	if math.IsNaN(d.Lon) || d.Lon < -180 || d.Lon > 180 {
		return Errorf(EINVALID, "lon: must be within -180..180")
	}
	if d.OffsetMs < MinOffsetMs || d.OffsetMs > MaxOffsetMs {
		return Errorf(EINVALID, "offset_ms: must be within %d..%d", MinOffsetMs, MaxOffsetMs)
	}
	return ValidateMSISDN(d.MSISDN)
}

// DeviceState is what the controller knows of a device right now: presence
// from its retained status and the last telemetry it sent. It is hot state,
// kept in memory and flushed to the store in batches.
type DeviceState struct {
	ID     string `json:"id"`
	Online bool   `json:"online"` // Presence == PresenceOnline
	// Presence is online, offline, or unknown: the controller's own
	// broker link is down, or no status of the device has reached it
	// since the link came back (or since the controller started).
	Presence    string     `json:"presence,omitempty"`
	Boot        uint64     `json:"boot"`
	OnlineSince time.Time  `json:"online_since,omitzero"`
	LastSeen    time.Time  `json:"last_seen,omitzero"`
	Telemetry   *Telemetry `json:"telemetry,omitempty"`
	Malformed   uint64     `json:"malformed"` // payloads from this device that failed to decode
	// Caps is what the receiver announced in its last online status
	// (contract v2: "srtp-gcm", "fence", ...); empty for a v1 receiver.
	Caps []string `json:"caps,omitempty"`
}

// Device presences (DeviceState.Presence).
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
	PresenceUnknown = "unknown"
)

// HasCap reports whether the receiver announced capability c.
func (s *DeviceState) HasCap(c string) bool {
	for _, x := range s.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// Telemetry is a device's periodic report, in domain form.
type Telemetry struct {
	At       time.Time    `json:"at"`
	RSSI     int          `json:"rssi"`
	Net      string       `json:"net,omitempty"`
	IP       string       `json:"ip,omitempty"` // the receiver's own address, as it reports it
	Volume   int          `json:"volume"`
	Muted    bool         `json:"muted"`
	TempC    float64      `json:"temp_c"`
	UptimeS  int64        `json:"uptime_s"`
	Firmware string       `json:"fw,omitempty"`
	Session  string       `json:"session,omitempty"`
	Stream   *StreamStats `json:"stream,omitempty"`
	Sync     *SyncStats   `json:"sync,omitempty"`  // receivers that announce timeline
	Cache    *CacheStats  `json:"cache,omitempty"` // receivers that announce cache

	Power *PowerStats `json:"power,omitempty"` // receivers with a battery (contract v2, tele.power)
}

// SyncStats is a receiver's clock synchronisation as it reports it
// (contract v2, tele.sync).
type SyncStats struct {
	Source   string  `json:"source"`              // rtcp-xr, ntp, gnss or none
	OffsetMs float64 `json:"offset_ms"`           // its clock's estimated offset from the controller's, being corrected
	ErrMs    float64 `json:"sync_err_ms"`         // estimated error of that estimate: how far out of step it may play
	RTTMs    float64 `json:"rtt_ms"`              // round trip of its best recent time exchange
	DriftPPM float64 `json:"drift_ppm"`           // its clock's estimated drift
	CorrMin  int     `json:"corrections_per_min"` // samples inserted or removed in the last minute
	Resyncs  int     `json:"resyncs"`             // hard re-syncs since boot
}

// StreamStats counts what a receiver did with the RTP stream it was sent.
type StreamStats struct {
	Received     uint64  `json:"received"`
	Lost         uint64  `json:"lost"`
	Late         uint64  `json:"late"`
	Concealed    uint64  `json:"concealed"`
	FECRecovered uint64  `json:"fec_recovered"`
	Played       uint64  `json:"played"`
	JitterMs     float64 `json:"jitter_ms"`
}

// DeviceService keeps the device registry and its credentials.
type DeviceService interface {
	// CreateDevice registers d and returns its MQTT password, which is
	// stored hashed and cannot be read back.
	CreateDevice(ctx context.Context, d *Device) (password string, err error)
	Device(ctx context.Context, id string) (*Device, error)
	Devices(ctx context.Context) ([]*Device, error)
}

// PresenceService reports live device state.
type PresenceService interface {
	DeviceState(id string) (DeviceState, bool)
}
