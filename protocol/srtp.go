package protocol

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Receiver capabilities, announced in Status.Caps (contract v2). A receiver
// that does not announce one gets the v1 behaviour for it.
const (
	CapSRTPGCM  = "srtp-gcm" // SRTP/SRTCP with AEAD_AES_128_GCM, keys from PlayArgs.Keys
	CapTimeline = "timeline" // session timeline t0_ms/ts0 (sync issue)
	CapFence    = "fence"    // ignores plays and packets of a lower fence (HA issue)
	CapCache    = "cache"    // stored alert messages (autonomous receivers)
	CapSMS      = "sms"      // SMS trigger (autonomous receivers)
)

// The SRTP profile of contract v2: AEAD_AES_128_GCM (RFC 7714) for SRTP and
// SRTCP, with a 16-byte master key and a 12-byte master salt.
const (
	SRTPProfile = "AEAD_AES_128_GCM"
	SRTPKeyLen  = 16
	SRTPSaltLen = 12
	// SRTPSecretLen is the length of a session's secret, the HKDF input key.
	SRTPSecretLen = 32
	// SRTPReplayWindow is the replay window (packets) receivers and the
	// controller keep for SRTP and SRTCP; anything older or seen is dropped.
	SRTPReplayWindow = 1024
)

// Fence orders controllers: (cluster generation, Raft term). A receiver
// ignores plays and packets of a fence lower than the highest it has seen
// for a session (HA issue). Gen also increases on every start of a
// single controller, so keys derived with it are never reused across
// restarts.
type Fence struct {
	Gen  uint64 `json:"gen"`
	Term uint64 `json:"term"`
}

// Less reports whether f is lower than o (Gen first, then Term).
func (f Fence) Less(o Fence) bool {
	return f.Gen < o.Gen || (f.Gen == o.Gen && f.Term < o.Term)
}

// SRTPKeys is a receiver's SRTP master key and salt for one session, hex.
type SRTPKeys struct {
	Profile string `json:"profile"` // SRTPProfile
	Key     string `json:"key"`     // 32 hex digits
	Salt    string `json:"salt"`    // 24 hex digits
}

// srtpKDFLabel is both the HKDF salt and the prefix of its info, so the
// derivation can never collide with another use of the same secret.
const srtpKDFLabel = "loa-srtp-v1"

// DeriveSRTPKeys derives a receiver's SRTP master key and salt:
//
//	HKDF-SHA256(ikm = secret, salt = "loa-srtp-v1",
//	            info = "loa-srtp-v1" 0x00 device 0x00 gen(8, big-endian) term(8, big-endian))
//
// 28 bytes of output: key = the first 16, salt = the next 12. The device id
// makes every receiver's key its own; the fence makes two controllers (or
// two starts of one) never encrypt under the same key and packet index.
func DeriveSRTPKeys(secret []byte, device string, f Fence) (SRTPKeys, error) {
	if len(secret) != SRTPSecretLen {
		return SRTPKeys{}, fmt.Errorf("srtp: secret is %d bytes, want %d", len(secret), SRTPSecretLen)
	}
	if device == "" {
		return SRTPKeys{}, errors.New("srtp: device id is empty")
	}
	info := make([]byte, 0, len(srtpKDFLabel)+len(device)+18)
	info = append(info, srtpKDFLabel...)
	info = append(info, 0)
	info = append(info, device...)
	info = append(info, 0)
	info = binary.BigEndian.AppendUint64(info, f.Gen)
	info = binary.BigEndian.AppendUint64(info, f.Term)
	out, err := hkdf.Key(sha256.New, secret, []byte(srtpKDFLabel), string(info), SRTPKeyLen+SRTPSaltLen)
	if err != nil {
		return SRTPKeys{}, fmt.Errorf("srtp: derive: %w", err)
	}
	return SRTPKeys{
		Profile: SRTPProfile,
		Key:     hex.EncodeToString(out[:SRTPKeyLen]),
		Salt:    hex.EncodeToString(out[SRTPKeyLen:]),
	}, nil
}

// Material returns the decoded master key and salt, checking the profile
// and lengths.
func (k SRTPKeys) Material() (key, salt []byte, err error) {
	if k.Profile != SRTPProfile {
		return nil, nil, fmt.Errorf("keys: profile %q is not %s", truncateText(k.Profile, 32), SRTPProfile)
	}
	key, err = hex.DecodeString(k.Key)
	if err != nil || len(key) != SRTPKeyLen {
		return nil, nil, fmt.Errorf("keys: key must be %d hex digits", 2*SRTPKeyLen)
	}
	salt, err = hex.DecodeString(k.Salt)
	if err != nil || len(salt) != SRTPSaltLen {
		return nil, nil, fmt.Errorf("keys: salt must be %d hex digits", 2*SRTPSaltLen)
	}
	return key, salt, nil
}

// Address challenge (contract v2, SRTP receivers). Both packets are RTCP
// APP packets named RTCPChallengeName inside an authenticated SRTCP compound
// packet; the data is ChallengeLen random bytes.
//
//   - subtype ChallengeSubtype, controller → receiver: sent at once to a new
//     source address from which an authenticated report arrived;
//   - subtype ResponseSubtype, receiver → controller: the receiver echoes
//     the nonce from its RTP socket (with its report).
//
// The controller moves a receiver's stream to a new address only when the
// matching response arrives from that address, so a report captured on the
// path and replayed from elsewhere moves nothing.
const (
	RTCPChallengeName = "LOA2"
	ChallengeSubtype  = 1
	ResponseSubtype   = 2
	ChallengeLen      = 16
)
