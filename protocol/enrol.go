package protocol

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Enrolment: a receiver ships with a claim code; a technician claims the
// code into an area; the receiver, polling EnrolPath with the code, then
// receives its id, MQTT password, broker URL and the station's CA, once,
// authenticated by an HMAC keyed with the code (see CONTRACT.md,
// "Enrolment").

// EnrolPath is the HTTP route a receiver polls, relative to the
// controller's base URL.
const EnrolPath = "/api/v1/enrol"

// ClaimCodeLen is the length of a claim code in its canonical form: 20
// characters of the RFC 4648 base32 alphabet (A–Z, 2–7), 100 random bits.
const ClaimCodeLen = 20

// MaxEnrolResponse bounds an enrolment answer (the CA certificate makes
// it larger than an MQTT payload).
const MaxEnrolResponse = 64 << 10

// EnrolMACLabel starts the bytes the enrolment MAC covers, so the key
// (the claim code) never authenticates anything else.
const EnrolMACLabel = "loa-enrol-v1"

var claimEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewClaimCode returns a random claim code in canonical form, as a
// factory prints it on a receiver's label.
func NewClaimCode() string {
	b := make([]byte, ClaimCodeLen*5/8)
	_, _ = rand.Read(b) // never fails on supported platforms
	return claimEncoding.EncodeToString(b)
}

// NormalizeClaimCode returns s in canonical form: upper case, without the
// spaces and hyphens a label groups it with ("ABCDE-FGHIJ-..."). It
// refuses anything that is not 20 characters of A–Z and 2–7 then.
func NormalizeClaimCode(s string) (string, error) {
	if len(s) > 4*ClaimCodeLen {
		return "", errors.New("claim code: too long")
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == ' ' || c == '-':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return "", fmt.Errorf("claim code: %q is not in the base32 alphabet (A–Z, 2–7)", c)
		}
		b.WriteRune(c)
	}
	if b.Len() != ClaimCodeLen {
		return "", fmt.Errorf("claim code: %d characters, want %d (A–Z, 2–7; spaces and hyphens are ignored)", b.Len(), ClaimCodeLen)
	}
	return b.String(), nil
}

// ClaimCodeHash is what the controller keeps of a claim code: the hex
// SHA-256 of its canonical form. The code has 100 random bits, so a fast
// hash is enough to keep it from being read back.
func ClaimCodeHash(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:])
}

// EnrolRequest is the body a receiver posts to EnrolPath.
type EnrolRequest struct {
	ClaimCode string `json:"claim_code"`
}

// EnrolResponse is the controller's answer once the code is claimed. MAC
// binds every other field to the claim code (SignEnrolResponse).
type EnrolResponse struct {
	DeviceID    string `json:"device_id"`
	Password    string `json:"password"`
	MQTTURL     string `json:"mqtt_url"`
	CAPEM       string `json:"ca_pem"` // "" when the station has no CA (plain MQTT on a trusted network)
	FirmwareURL string `json:"firmware_url,omitempty"`
	// StationKey is the station's ed25519 public key (EncodeStationPublicKey),
	// which signs stored alert messages and SMS triggers.
	StationKey string `json:"station_key,omitempty"`
	// MQTTURLs is every controller's broker of a cluster, mqtt_url among
	// them; the receiver rotates through them (CONTRACT.md, "Brokers").
	// Absent: mqtt_url alone.
	MQTTURLs []string `json:"mqtt_urls,omitempty"`
	MAC      string   `json:"mac"` // 64 hex digits
}

// MaxMQTTURLs bounds mqtt_urls: a station has a few controllers.
const MaxMQTTURLs = 8

// EnrolMACInput returns the bytes the MAC covers: the label, then each
// field in the order of the contract as a 4-byte big-endian length and
// its bytes, so no two answers share an input. station_key is appended
// only when present or mqtt_urls is, and mqtt_urls (its count, then each
// URL so) only when present, so answers without them keep the MAC they
// had.
func (r *EnrolResponse) EnrolMACInput() []byte {
	b := []byte(EnrolMACLabel)
	fields := []string{r.DeviceID, r.Password, r.MQTTURL, r.CAPEM, r.FirmwareURL}
	if r.StationKey != "" || len(r.MQTTURLs) > 0 {
		fields = append(fields, r.StationKey)
	}
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if len(r.MQTTURLs) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.MQTTURLs)))
		for _, u := range r.MQTTURLs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(u)))
			b = append(b, u...)
		}
	}
	return b
}

func (r *EnrolResponse) mac(canonicalCode string) []byte {
	h := hmac.New(sha256.New, []byte(canonicalCode))
	h.Write(r.EnrolMACInput())
	return h.Sum(nil)
}

// SignEnrolResponse sets r.MAC to HMAC-SHA256(key = the canonical claim
// code, message = r.EnrolMACInput()).
func SignEnrolResponse(canonicalCode string, r *EnrolResponse) {
	r.MAC = hex.EncodeToString(r.mac(canonicalCode))
}

// ErrEnrolMAC is VerifyEnrolResponse's answer to an answer not made by
// someone who knows the claim code.
var ErrEnrolMAC = errors.New("enrol: the answer's mac does not match the claim code")

// VerifyEnrolResponse checks r.MAC against the claim code in constant
// time.
func VerifyEnrolResponse(canonicalCode string, r *EnrolResponse) error {
	got, err := hex.DecodeString(r.MAC)
	if err != nil || len(got) != sha256.Size || !hmac.Equal(got, r.mac(canonicalCode)) {
		return ErrEnrolMAC
	}
	return nil
}

// DecodeEnrolResponse parses an enrolment answer and checks that the
// fields a receiver needs are there. It does not check the MAC.
func DecodeEnrolResponse(b []byte) (EnrolResponse, error) {
	var r EnrolResponse
	if len(b) > MaxEnrolResponse {
		return r, fmt.Errorf("enrol: answer of %d bytes exceeds %d", len(b), MaxEnrolResponse)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return EnrolResponse{}, fmt.Errorf("enrol: %w", err)
	}
	if dec.More() {
		return EnrolResponse{}, errors.New("enrol: trailing data after the JSON object")
	}
	switch {
	case r.DeviceID == "" || strings.ContainsAny(r.DeviceID, "/+#") || len(r.DeviceID) > 64:
		return EnrolResponse{}, fmt.Errorf("enrol: device_id %q: want 1–64 characters without / + #", r.DeviceID)
	case r.Password == "":
		return EnrolResponse{}, errors.New("enrol: password: required")
	case r.MQTTURL == "" || !strings.Contains(r.MQTTURL, "://"):
		return EnrolResponse{}, fmt.Errorf("enrol: mqtt_url %q: want scheme://host:port", r.MQTTURL)
	case r.MAC == "":
		return EnrolResponse{}, errors.New("enrol: mac: required")
	}
	if len(r.MQTTURLs) > MaxMQTTURLs {
		return EnrolResponse{}, fmt.Errorf("enrol: mqtt_urls: %d, at most %d", len(r.MQTTURLs), MaxMQTTURLs)
	}
	for _, u := range r.MQTTURLs {
		if !strings.Contains(u, "://") {
			return EnrolResponse{}, fmt.Errorf("enrol: mqtt_urls: %q: want scheme://host:port", u)
		}
	}
	if r.StationKey != "" {
		if _, err := ParseStationPublicKey(r.StationKey); err != nil {
			return EnrolResponse{}, fmt.Errorf("enrol: station_key: %w", err)
		}
	}
	return r, nil
}
