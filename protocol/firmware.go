package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FirmwareArgs are the args of a firmware command: fetch the image at URL
// (HTTP GET, resumable with Range), check its size and SHA-256, verify Sig
// against the operator's ed25519 public key the receiver was built with,
// refuse a version not newer than the running one, write it to the spare
// A/B slot, reboot into it and report.
//
// Acks: accepted; progress (Result: FirmwareProgress) while downloading and
// installing; then the receiver reboots (its Will fires) and, once the new
// image is up and healthy, sends done from the new boot with Result
// FirmwareResult. An image that does not come up healthy is rolled back by
// the receiver itself, which then sends failed with code FWRolledBack from
// the old image. Refusals are failed with the codes below and install
// nothing.
type FirmwareArgs struct {
	Version string `json:"version"` // dotted numeric, e.g. "1.4.2"
	URL     string `json:"url"`     // http:// or https://
	Size    int64  `json:"size"`    // bytes
	SHA256  string `json:"sha256"`  // hex, 64 characters
	Sig     string `json:"sig"`     // base64 (std) ed25519 signature of FirmwareSignedMessage(Version, SHA256)
}

// Firmware failure codes (Ack.Code of a failed firmware command).
const (
	FWBadArgs      = "bad_args"      // args did not decode
	FWDowngrade    = "downgrade"     // version not newer than the running one
	FWDownload     = "download"      // the image could not be fetched
	FWBadChecksum  = "bad_checksum"  // size or SHA-256 differ from the args
	FWBadSignature = "bad_signature" // the signature does not verify
	FWInstall      = "install"       // writing the spare slot failed
	FWRolledBack   = "rolled_back"   // the new image did not come up healthy; the old one runs
	FWBusy         = "busy"          // another firmware command is in progress
)

// Firmware progress phases (FirmwareProgress.Phase).
const (
	FWPhaseDownloading = "downloading"
	FWPhaseVerifying   = "verifying"
	FWPhaseInstalling  = "installing"
	FWPhaseRebooting   = "rebooting"
)

// FirmwareProgress is the Result of a progress ack of a firmware command.
type FirmwareProgress struct {
	Phase string `json:"phase"`
	Bytes int64  `json:"bytes"` // downloaded so far
	Total int64  `json:"total"`
}

// FirmwareResult is the Result of the final ack of a firmware command.
type FirmwareResult struct {
	Version string `json:"version"` // the version now running
	Slot    string `json:"slot"`    // "a" or "b", the slot now running
}

// MaxFirmwareSize bounds an image a receiver accepts.
const MaxFirmwareSize = 64 << 20

// FirmwareSignedMessage is what an image's ed25519 signature covers: a
// domain label, the version and the SHA-256 of the image. Binding the
// version stops a signed old image from being relabelled as new.
func FirmwareSignedMessage(version string, sha256hex string) []byte {
	return []byte("loa-firmware-v1\x00" + version + "\x00" + strings.ToLower(sha256hex))
}

// SignFirmware returns the base64 signature of an image's version and hash.
func SignFirmware(key ed25519.PrivateKey, version, sha256hex string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, FirmwareSignedMessage(version, sha256hex)))
}

// VerifyFirmware checks a signature made by SignFirmware.
func VerifyFirmware(pub ed25519.PublicKey, version, sha256hex, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return errors.New("firmware: signature is not a base64 ed25519 signature")
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, FirmwareSignedMessage(version, sha256hex), raw) {
		return errors.New("firmware: signature does not verify")
	}
	return nil
}

// DecodeFirmwareArgs parses and checks firmware args.
func DecodeFirmwareArgs(b []byte) (FirmwareArgs, error) {
	var a FirmwareArgs
	if err := decodeStrict("firmware", b, &a); err != nil {
		return FirmwareArgs{}, err
	}
	if _, err := ParseFWVersion(a.Version); err != nil {
		return FirmwareArgs{}, fmt.Errorf("firmware: %w", err)
	}
	if !strings.HasPrefix(a.URL, "http://") && !strings.HasPrefix(a.URL, "https://") || len(a.URL) > 2048 {
		return FirmwareArgs{}, errors.New("firmware: url must be http:// or https://, at most 2048 bytes")
	}
	if a.Size <= 0 || a.Size > MaxFirmwareSize {
		return FirmwareArgs{}, fmt.Errorf("firmware: size %d outside 1..%d", a.Size, MaxFirmwareSize)
	}
	if h, err := hex.DecodeString(a.SHA256); err != nil || len(h) != 32 {
		return FirmwareArgs{}, errors.New("firmware: sha256 must be 64 hex characters")
	}
	if raw, err := base64.StdEncoding.DecodeString(a.Sig); err != nil || len(raw) != ed25519.SignatureSize {
		return FirmwareArgs{}, errors.New("firmware: sig must be a base64 ed25519 signature")
	}
	return a, nil
}

// FWVersion is a parsed dotted numeric firmware version.
type FWVersion []int

// ParseFWVersion parses "1", "1.4" or "1.4.2" (up to 4 parts, each 0–99999).
func ParseFWVersion(s string) (FWVersion, error) {
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 4 {
		return nil, fmt.Errorf("version %q: want 1 to 4 dot-separated numbers", s)
	}
	v := make(FWVersion, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 99999 || p != strconv.Itoa(n) {
			return nil, fmt.Errorf("version %q: part %q is not a number 0–99999", s, p)
		}
		v[i] = n
	}
	return v, nil
}

// Compare returns -1, 0 or 1 as v is older than, equal to or newer than w;
// missing parts count as 0 ("1.4" == "1.4.0").
func (v FWVersion) Compare(w FWVersion) int {
	for i := range max(len(v), len(w)) {
		var a, b int
		if i < len(v) {
			a = v[i]
		}
		if i < len(w) {
			b = w[i]
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}
