package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
)

// The station key is an ed25519 key pair the controller keeps online
// (<data>/station.key, mode 0600, and station.pub), in the same file
// format as the firmware keys. It signs what a receiver must believe
// without the broker's word: stored alert messages and SMS triggers,
// which arrive when MQTT, or all data, is down. Receivers learn its
// public half at enrolment (EnrolResponse.StationKey) or from their
// provisioning profile. Unlike the firmware key it cannot be kept
// offline: the controller signs with it as alerts are sent.

// StationKeyFile and StationPubFile are the key's files in the data dir.
const (
	StationKeyFile = "station.key"
	StationPubFile = "station.pub"
)

// EncodeStationPublicKey is the public key as it travels in JSON: the
// standard base64 of its 32 bytes.
func EncodeStationPublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParseStationPublicKey parses EncodeStationPublicKey's form (or the
// contents of a .pub file).
func ParseStationPublicKey(s string) (ed25519.PublicKey, error) {
	k, err := ParseFirmwarePublicKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("station key: %w", err)
	}
	return k, nil
}
