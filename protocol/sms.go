package protocol

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The SMS trigger (contract v2, cap `sms`): when MQTT, or all data, is
// down, the controller sends a receiver's modem one SMS that says "play
// stored message N", signed with the station key. It must fit one SMS of
// 160 GSM 7-bit characters: 25 bytes of fields and the 64-byte ed25519
// signature are 89 bytes, 119 characters of unpadded base64url, behind
// the 5-character prefix "LOA1 ". Base64url's alphabet (A–Z, a–z, 0–9,
// '-', '_') is all in the GSM 7-bit default alphabet (no escape), and
// has no '+', '/' or '=' for an HTTP gateway's form encoding to mangle.
// A binary (8-bit) SMS would hold 140 octets, but not every gateway,
// carrier or modem passes binary SMS; text passes everywhere.
//
// Fields, big-endian:
//
//	code     2  stored message code (MinStoredCode..MaxStoredCode)
//	area     4  administrative code as BCD: up to 8 digits, then 0xF nibbles; all 0xF is "*" (every area)
//	repeats  1  1..MaxStoredRepeats
//	volume   1  0..100 (0: the receiver's own)
//	priority 1  the session priority it plays at
//	expires  4  unix seconds: refused from then on
//	seq      4  the station's sequence number, ≥ 1, increasing
//	session  8  the session id the receiver's events name (16 hex digits)
//
// signature = ed25519(station key, "loa-sms-v1" 0x00 fields).

// SMS text prefixes and signature labels.
const (
	SMSPrefix      = "LOA1 "
	SMSReplyPrefix = "LOA1R "
	SMSLabel       = "loa-sms-v1"
	SMSReplyLabel  = "loa-sms-reply-v1"
	// SMSMaxLen is one SMS of GSM 7-bit characters.
	SMSMaxLen = 160
	// SMSAllAreas is the area of a trigger for every receiver of the station.
	SMSAllAreas = "*"
	// SMSReplyTagLen is the bytes of HMAC-SHA256 a reply keeps.
	SMSReplyTagLen = 16
)

const (
	smsFieldsLen = 2 + 4 + 1 + 1 + 1 + 4 + 4 + 8
	smsLen       = smsFieldsLen + ed25519.SignatureSize
	smsReplyLen  = 4 + 8 + 1 + 4 + SMSReplyTagLen
)

// SMSTrigger is a signed SMS trigger's fields.
type SMSTrigger struct {
	Code     int       // stored message code, MinStoredCode..MaxStoredCode
	Area     string    // administrative code (1–8 digits) or SMSAllAreas
	Repeats  int       // 1..MaxStoredRepeats
	Volume   int       // 0..100; 0 = the receiver's own
	Priority uint8     // the priority it plays at
	Expires  time.Time // refused from then on (whole seconds)
	Seq      uint32    // ≥ 1; a receiver refuses one not above the highest it accepted
	Session  string    // 16 lowercase hex digits: the session its events name
}

// Why a receiver refuses an SMS trigger (wrapped by the errors of
// VerifySMSTrigger and AcceptSMSTrigger).
var (
	ErrSMSMalformed = errors.New("sms: malformed")
	ErrSMSSignature = errors.New("sms: bad signature")
	ErrSMSExpired   = errors.New("sms: expired")
	ErrSMSArea      = errors.New("sms: another area")
	ErrSMSReplayed  = errors.New("sms: replayed")
)

func (t *SMSTrigger) validate() error {
	switch {
	case t.Code < MinStoredCode || t.Code > MaxStoredCode:
		return fmt.Errorf("code %d outside %d..%d", t.Code, MinStoredCode, MaxStoredCode)
	case t.Repeats < 1 || t.Repeats > MaxStoredRepeats:
		return fmt.Errorf("repeats %d outside 1..%d", t.Repeats, MaxStoredRepeats)
	case t.Volume < 0 || t.Volume > 100:
		return fmt.Errorf("volume %d outside 0..100", t.Volume)
	case t.Seq == 0:
		return errors.New("seq 0")
	case t.Expires.Unix() <= 0 || t.Expires.Unix() > 1<<32-1:
		return fmt.Errorf("expires %v outside the 32-bit unix seconds", t.Expires)
	}
	if _, err := smsSession(t.Session); err != nil {
		return err
	}
	_, err := smsArea(t.Area)
	return err
}

// smsSession is a session id's 8 bytes.
func smsSession(s string) ([8]byte, error) {
	var b [8]byte
	if len(s) != 16 || strings.ToLower(s) != s {
		return b, fmt.Errorf("session %q: want 16 lowercase hex digits", s)
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, fmt.Errorf("session %q: want 16 lowercase hex digits", s)
	}
	return b, nil
}

// smsArea packs an administrative code as BCD.
func smsArea(a string) ([4]byte, error) {
	b := [4]byte{0xff, 0xff, 0xff, 0xff}
	if a == SMSAllAreas {
		return b, nil
	}
	if len(a) < 1 || len(a) > 8 {
		return b, fmt.Errorf("area %q: want 1–8 digits or %q", a, SMSAllAreas)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c < '0' || c > '9' {
			return b, fmt.Errorf("area %q: want 1–8 digits or %q", a, SMSAllAreas)
		}
		shift := 4 * (1 - i%2)
		b[i/2] = b[i/2]&^(0xf<<shift) | (c-'0')<<shift
	}
	return b, nil
}

// smsAreaString unpacks smsArea's BCD.
func smsAreaString(b []byte) (string, error) {
	var digits []byte
	end := false
	for i := 0; i < 8; i++ {
		n := b[i/2] >> (4 * (1 - i%2)) & 0xf
		switch {
		case n == 0xf:
			end = true
		case n > 9 || end:
			return "", errors.New("area: bad BCD")
		default:
			digits = append(digits, '0'+n)
		}
	}
	if len(digits) == 0 {
		return SMSAllAreas, nil
	}
	return string(digits), nil
}

// smsDecode decodes unpadded base64url, refusing every other character
// (the decoder would skip line breaks).
func smsDecode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%q is not base64url", c)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func (t *SMSTrigger) fields() []byte {
	area, _ := smsArea(t.Area)
	sess, _ := smsSession(t.Session)
	b := make([]byte, 0, smsFieldsLen)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Code))
	b = append(b, area[:]...)
	b = append(b, byte(t.Repeats), byte(t.Volume), t.Priority)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Expires.Unix()))
	b = binary.BigEndian.AppendUint32(b, t.Seq)
	return append(b, sess[:]...)
}

func smsSigned(label string, fields []byte) []byte {
	return append(append([]byte(label), 0), fields...)
}

// EncodeSMSTrigger signs t with the station key and returns the SMS text.
func EncodeSMSTrigger(key ed25519.PrivateKey, t SMSTrigger) (string, error) {
	if err := t.validate(); err != nil {
		return "", fmt.Errorf("sms trigger: %w", err)
	}
	f := t.fields()
	sig := ed25519.Sign(key, smsSigned(SMSLabel, f))
	return SMSPrefix + base64.RawURLEncoding.EncodeToString(append(f, sig...)), nil
}

// ParseSMSTrigger decodes an SMS trigger's text without verifying it:
// for logs and tools. Receivers use VerifySMSTrigger.
func ParseSMSTrigger(text string) (SMSTrigger, []byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), SMSPrefix)
	if !ok || len(text) > SMSMaxLen {
		return SMSTrigger{}, nil, fmt.Errorf("%w: not a %q SMS of at most %d characters", ErrSMSMalformed, SMSPrefix, SMSMaxLen)
	}
	raw, err := smsDecode(rest)
	if err != nil || len(raw) != smsLen {
		return SMSTrigger{}, nil, fmt.Errorf("%w: want %d bytes of unpadded base64url", ErrSMSMalformed, smsLen)
	}
	area, err := smsAreaString(raw[2:6])
	if err != nil {
		return SMSTrigger{}, nil, fmt.Errorf("%w: %v", ErrSMSMalformed, err)
	}
	t := SMSTrigger{
		Code:     int(binary.BigEndian.Uint16(raw[0:2])),
		Area:     area,
		Repeats:  int(raw[6]),
		Volume:   int(raw[7]),
		Priority: raw[8],
		Expires:  time.Unix(int64(binary.BigEndian.Uint32(raw[9:13])), 0).UTC(),
		Seq:      binary.BigEndian.Uint32(raw[13:17]),
		Session:  hex.EncodeToString(raw[17:25]),
	}
	if err := t.validate(); err != nil {
		return SMSTrigger{}, nil, fmt.Errorf("%w: %v", ErrSMSMalformed, err)
	}
	return t, raw, nil
}

// VerifySMSTrigger decodes text and checks its signature with the station
// key: ErrSMSMalformed or ErrSMSSignature otherwise. A receiver without
// the station key refuses every trigger.
func VerifySMSTrigger(pub ed25519.PublicKey, text string) (SMSTrigger, error) {
	t, raw, err := ParseSMSTrigger(text)
	if err != nil {
		return SMSTrigger{}, err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, smsSigned(SMSLabel, raw[:smsFieldsLen]), raw[smsFieldsLen:]) {
		return SMSTrigger{}, ErrSMSSignature
	}
	return t, nil
}

// AcceptSMSTrigger applies a receiver's rules to a verified trigger at
// now: refused once expired (ErrSMSExpired), for an area the receiver is
// not in (ErrSMSArea; areas are the codes of its own area and those
// above it), or with a sequence number not above highest, the highest it
// accepted (ErrSMSReplayed). On nil the receiver keeps t.Seq as its
// highest, durably, before it plays.
func AcceptSMSTrigger(t SMSTrigger, now time.Time, highest uint32, areas []string) error {
	if !now.Before(t.Expires) {
		return fmt.Errorf("%w at %s", ErrSMSExpired, t.Expires.Format(time.RFC3339))
	}
	in := t.Area == SMSAllAreas
	for _, a := range areas {
		in = in || a == t.Area
	}
	if !in {
		return fmt.Errorf("%w: %s", ErrSMSArea, t.Area)
	}
	if t.Seq <= highest {
		return fmt.Errorf("%w: seq %d, highest accepted %d", ErrSMSReplayed, t.Seq, highest)
	}
	return nil
}

// SMSReply is a receiver's "played N" report by SMS, sent only while its
// data path stays down. It has no station key: it is authenticated with
// HMAC-SHA256 under SMSReplyKey of its MQTT password, which the
// controller can compute from the password's SHA-256 it keeps.
//
// Text: "LOA1R " device-id " " base64url(fields ‖ tag), fields big-endian:
//
//	seq      4  the trigger's
//	session  8  the trigger's
//	played   1  repeats played in full
//	started  4  unix seconds of its first frame
//
// tag = HMAC-SHA256(SMSReplyKey, "loa-sms-reply-v1" 0x00 device-id 0x00 fields)[:16].
type SMSReply struct {
	Device  string
	Seq     uint32
	Session string
	Played  int
	Started time.Time
}

// SMSReplyKey is a receiver's reply key: HMAC-SHA256 keyed by the
// SHA-256 of its MQTT password, over the label. It changes with the
// password.
func SMSReplyKey(passwordSHA256 [sha256.Size]byte) []byte {
	m := hmac.New(sha256.New, passwordSHA256[:])
	m.Write([]byte(SMSReplyLabel))
	return m.Sum(nil)
}

// SMSReplyKeyFromPassword is SMSReplyKey of password, as a receiver has it.
func SMSReplyKeyFromPassword(password string) []byte {
	return SMSReplyKey(sha256.Sum256([]byte(password)))
}

func (r *SMSReply) validate() error {
	if r.Device == "" || len(r.Device) > 64 || strings.ContainsFunc(r.Device, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}) {
		return fmt.Errorf("device %q: want 1–64 of a-z 0-9 - _ .", r.Device)
	}
	if r.Seq == 0 {
		return errors.New("seq 0")
	}
	if r.Played < 0 || r.Played > 255 {
		return fmt.Errorf("played %d outside 0..255", r.Played)
	}
	if r.Started.Unix() < 0 || r.Started.Unix() > 1<<32-1 {
		return fmt.Errorf("started %v outside the 32-bit unix seconds", r.Started)
	}
	_, err := smsSession(r.Session)
	return err
}

func (r *SMSReply) fields() []byte {
	sess, _ := smsSession(r.Session)
	b := binary.BigEndian.AppendUint32(make([]byte, 0, smsReplyLen), r.Seq)
	b = append(b, sess[:]...)
	b = append(b, byte(r.Played))
	return binary.BigEndian.AppendUint32(b, uint32(r.Started.Unix()))
}

func smsReplyTag(key []byte, device string, fields []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(smsSigned(SMSReplyLabel, append(append([]byte(device), 0), fields...)))
	return m.Sum(nil)[:SMSReplyTagLen]
}

// EncodeSMSReply authenticates r with the receiver's reply key and
// returns the SMS text.
func EncodeSMSReply(key []byte, r SMSReply) (string, error) {
	if err := r.validate(); err != nil {
		return "", fmt.Errorf("sms reply: %w", err)
	}
	f := r.fields()
	return SMSReplyPrefix + r.Device + " " + base64.RawURLEncoding.EncodeToString(append(f, smsReplyTag(key, r.Device, f)...)), nil
}

// ParseSMSReply decodes a reply without checking its tag: the controller
// reads the device to find its key, then calls VerifySMSReply.
func ParseSMSReply(text string) (SMSReply, []byte, error) {
	text = strings.TrimSpace(text)
	rest, ok := strings.CutPrefix(text, SMSReplyPrefix)
	if !ok || len(text) > SMSMaxLen {
		return SMSReply{}, nil, fmt.Errorf("%w: not a %q SMS of at most %d characters", ErrSMSMalformed, SMSReplyPrefix, SMSMaxLen)
	}
	device, b64, ok := strings.Cut(rest, " ")
	if !ok {
		return SMSReply{}, nil, fmt.Errorf("%w: no device id", ErrSMSMalformed)
	}
	raw, err := smsDecode(b64)
	if err != nil || len(raw) != smsReplyLen {
		return SMSReply{}, nil, fmt.Errorf("%w: want %d bytes of unpadded base64url", ErrSMSMalformed, smsReplyLen)
	}
	r := SMSReply{
		Device:  device,
		Seq:     binary.BigEndian.Uint32(raw[0:4]),
		Session: hex.EncodeToString(raw[4:12]),
		Played:  int(raw[12]),
		Started: time.Unix(int64(binary.BigEndian.Uint32(raw[13:17])), 0).UTC(),
	}
	if err := r.validate(); err != nil {
		return SMSReply{}, nil, fmt.Errorf("%w: %v", ErrSMSMalformed, err)
	}
	return r, raw, nil
}

// VerifySMSReply checks a parsed reply's tag with the device's reply key.
func VerifySMSReply(key []byte, text string) (SMSReply, error) {
	r, raw, err := ParseSMSReply(text)
	if err != nil {
		return SMSReply{}, err
	}
	n := len(raw) - SMSReplyTagLen
	if !hmac.Equal(raw[n:], smsReplyTag(key, r.Device, raw[:n])) {
		return SMSReply{}, ErrSMSSignature
	}
	return r, nil
}
