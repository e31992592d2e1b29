package loa

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
)

// FirmwareImage is an uploaded receiver image. The bytes live beside the
// database, named by SHA256; Sig is the operator's ed25519 signature over
// the version and the hash (protocol.FirmwareSignedMessage), checked at
// upload and again by every receiver.
type FirmwareImage struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"` // lowercase hex
	Sig       string    `json:"sig"`    // base64 (std) ed25519 signature
	Name      string    `json:"name,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Rollout states.
const (
	RolloutRunning   = "running"
	RolloutPaused    = "paused"
	RolloutCompleted = "completed"
	RolloutAborted   = "aborted"
)

// Per-device rollout states. Done, failed, skipped_current and offline are
// final; sent, downloading, installing and rebooting are in flight.
const (
	RolloutDevicePending     = "pending"
	RolloutDeviceSent        = "sent"
	RolloutDeviceDownloading = "downloading"
	RolloutDeviceInstalling  = "installing"
	RolloutDeviceRebooting   = "rebooting"
	RolloutDeviceDone        = "done"
	RolloutDeviceFailed      = "failed"
	RolloutDeviceSkipped     = "skipped_current" // already at or above the version
	RolloutDeviceOffline     = "offline"         // offline for the whole wave timeout; not a failure
)

// RolloutDeviceFinal reports whether no further change is expected of a
// device in state st.
func RolloutDeviceFinal(st string) bool {
	switch st {
	case RolloutDeviceDone, RolloutDeviceFailed, RolloutDeviceSkipped, RolloutDeviceOffline:
		return true
	}
	return false
}

// Rollout defaults and bounds.
const (
	DefaultFailThreshold = 0.1
	DefaultWaveTimeout   = 30 * time.Minute
	MaxWaveTimeout       = 24 * time.Hour
	MinWaveTimeout       = time.Second
)

// DefaultWaves are the cumulative percentages of a rollout's devices that
// have been sent the image after each wave.
var DefaultWaves = []int{1, 10, 50, 100}

// Rollout sends one firmware image to the devices of Targets in waves.
type Rollout struct {
	ID            string        `json:"id"`
	ImageID       string        `json:"image_id"`
	Version       string        `json:"version"`
	Targets       Targets       `json:"targets"`
	Waves         []int         `json:"waves"`          // cumulative percent, increasing, the last 100
	FailThreshold float64       `json:"fail_threshold"` // fraction of a wave's attempted devices that may fail
	WaveTimeout   time.Duration `json:"wave_timeout_ns"`
	State         string        `json:"state"`
	Reason        string        `json:"reason,omitempty"` // why it paused or ended, when not by itself
	Wave          int           `json:"wave"`             // index into Waves of the wave being sent
	// WaveStarted is when the current wave began; its timeout runs from here.
	WaveStarted time.Time `json:"wave_started,omitzero"`
	// Accepted is how many failures of the current wave an operator
	// accepted by resuming after an automatic pause.
	Accepted int `json:"accepted,omitempty"`
	// AutoPaused is set while the rollout is paused by its threshold.
	AutoPaused bool            `json:"auto_paused,omitempty"`
	Devices    []RolloutDevice `json:"devices"` // in wave order
	CreatedBy  string          `json:"created_by,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	EndedAt    time.Time       `json:"ended_at,omitzero"`
}

// RolloutDevice is one device's progress in a rollout.
type RolloutDevice struct {
	Device    string    `json:"device"`
	Wave      int       `json:"wave"`
	State     string    `json:"state"`
	Code      string    `json:"code,omitempty"`    // the receiver's failure code (protocol.FW*), or timeout, unavailable
	Msg       string    `json:"msg,omitempty"`     // detail
	Version   string    `json:"version,omitempty"` // version the device last reported running
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// WaveTotals counts a wave's devices by state.
type WaveTotals struct {
	Wave    int            `json:"wave"`
	Percent int            `json:"percent"`
	Devices int            `json:"devices"`
	States  map[string]int `json:"states"`
}

// Totals counts each wave's devices by state.
func (r *Rollout) Totals() []WaveTotals {
	out := make([]WaveTotals, len(r.Waves))
	for i, p := range r.Waves {
		out[i] = WaveTotals{Wave: i, Percent: p, States: map[string]int{}}
	}
	for _, d := range r.Devices {
		if d.Wave >= 0 && d.Wave < len(out) {
			out[d.Wave].Devices++
			out[d.Wave].States[d.State]++
		}
	}
	return out
}

// Final reports whether the rollout will change no more devices.
func (r *Rollout) Final() bool { return r.State == RolloutCompleted || r.State == RolloutAborted }

// Normalize fills the defaults of a rollout request.
func (r *Rollout) Normalize() {
	if len(r.Waves) == 0 {
		r.Waves = append([]int(nil), DefaultWaves...)
	}
	if r.FailThreshold == 0 {
		r.FailThreshold = DefaultFailThreshold
	}
	if r.WaveTimeout == 0 {
		r.WaveTimeout = DefaultWaveTimeout
	}
}

// Validate checks a rollout request (after Normalize).
func (r *Rollout) Validate() error {
	if r.ImageID == "" || len(r.ImageID) > 128 {
		return Errorf(EINVALID, "image_id: required, at most 128 characters")
	}
	if r.Targets.Empty() {
		return Errorf(EINVALID, "targets: name at least one area or device")
	}
	for _, a := range r.Targets.Areas {
		if err := ValidateID("targets.areas", a); err != nil {
			return err
		}
	}
	for _, d := range r.Targets.Devices {
		if err := ValidateID("targets.devices", d); err != nil {
			return err
		}
	}
	if len(r.Waves) > 20 {
		return Errorf(EINVALID, "waves: at most 20")
	}
	prev := 0
	for _, p := range r.Waves {
		if p <= prev || p > 100 {
			return Errorf(EINVALID, "waves: %v: want increasing percentages within 1..100", r.Waves)
		}
		prev = p
	}
	if prev != 100 {
		return Errorf(EINVALID, "waves: the last wave must be 100 (%%), got %d", prev)
	}
	if !(r.FailThreshold >= 0 && r.FailThreshold <= 1) { // also refuses NaN
		return Errorf(EINVALID, "fail_threshold: must be a fraction within 0..1")
	}
	if r.WaveTimeout < MinWaveTimeout || r.WaveTimeout > MaxWaveTimeout {
		return Errorf(EINVALID, "wave_timeout: must be within %v..%v", MinWaveTimeout, MaxWaveTimeout)
	}
	return nil
}

// ValidFirmwareVersion checks a dotted numeric version: 1 to 4 parts, each
// a number 0–99999 without leading zeros (the rule protocol.ParseFWVersion
// applies on the wire).
func ValidFirmwareVersion(field, v string) error {
	parts := strings.Split(v, ".")
	if v == "" || len(parts) > 4 {
		return Errorf(EINVALID, "%s: %q: want 1 to 4 dot-separated numbers, e.g. 1.4.2", field, v)
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 99999 || p != strconv.Itoa(n) {
			return Errorf(EINVALID, "%s: %q: part %q is not a number 0–99999", field, v, p)
		}
	}
	return nil
}

// FirmwareService keeps firmware images and runs rollouts; the API
// consumes it.
type FirmwareService interface {
	// UploadFirmware verifies sig (base64 ed25519 over the version and
	// the image's SHA-256) against the operator's key and stores the
	// image. A bad signature, a tampered image or a bad version is
	// EINVALID and stores nothing; no key configured is EUNSUPPORTED.
	UploadFirmware(ctx context.Context, version, sig, name string, r io.Reader, createdBy string) (*FirmwareImage, error)
	FirmwareImage(ctx context.Context, id string) (*FirmwareImage, error)
	FirmwareImages(ctx context.Context) ([]*FirmwareImage, error)
	// OpenFirmware opens an image's bytes for download.
	OpenFirmware(ctx context.Context, id string) (*FirmwareImage, io.ReadSeekCloser, error)

	// StartRollout resolves r.Targets, plans the waves, persists r and
	// starts sending. It fills ID, Version, State, Devices and the times.
	StartRollout(ctx context.Context, r *Rollout) error
	PauseRollout(ctx context.Context, id, reason string) (*Rollout, error)
	ResumeRollout(ctx context.Context, id string) (*Rollout, error)
	AbortRollout(ctx context.Context, id, reason string) (*Rollout, error)
	Rollout(ctx context.Context, id string) (*Rollout, error)
	Rollouts(ctx context.Context) ([]*Rollout, error)
}
