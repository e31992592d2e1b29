package loa

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"time"
)

// The bulletin feed between controllers (docs/bulletin-feed.md): a
// publisher (the province's controller) serves the bulletins for the
// communes a subscriber stands for as a signed envelope; the subscriber
// (a commune station run elsewhere) verifies it with the publisher's
// station key, fetches the audio by its SHA-256 and reports each
// commune's tracking back.

// FeedSignatureLabel starts the bytes a feed signature covers, so a
// signature made for anything else with the station key (a stored
// message, an SMS trigger) never verifies as a feed.
const FeedSignatureLabel = "loa-bulletin-v1\x00"

// RoleFeed is the narrow role of a subscriber's token on its publisher:
// it reads the feed of its scope's communes and its media, and reports
// their tracking (ActionFeed), nothing else. Tokens only: nobody signs
// in as a feed.
const (
	RoleFeed   = "feed"
	ActionFeed = "feed"
)

// ValidTokenRole reports whether r names a role a token may have: a
// person's role, or RoleFeed.
func ValidTokenRole(r string) bool { return ValidRole(r) || r == RoleFeed }

// FeedEnvelope is what GET /api/v1/feed/bulletins answers: Payload is
// the JSON of a FeedPayload, Signature the ed25519 signature of
// FeedSignatureLabel followed by Payload's bytes, both standard base64.
type FeedEnvelope struct {
	Format    string `json:"format"` // "loa-bulletin-v1"
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// FeedFormat names the envelope's version.
const FeedFormat = "loa-bulletin-v1"

// FeedPayload is the signed content of a feed.
type FeedPayload struct {
	Publisher   string         `json:"publisher"` // the publisher's station name
	GeneratedAt time.Time      `json:"generated_at"`
	Bulletins   []FeedBulletin `json:"bulletins"`
}

// FeedBulletin is one bulletin for one of the subscriber's communes.
type FeedBulletin struct {
	ID          string    `json:"id"`
	AreaID      string    `json:"area_id"` // the commune on the publisher
	Title       string    `json:"title"`
	Category    string    `json:"category,omitempty"`
	Level       string    `json:"level"`
	Text        string    `json:"text,omitempty"`
	MediaSHA256 string    `json:"media_sha256"` // of the Ogg Opus file GET /api/v1/feed/media/{sha256} serves
	MediaSize   int64     `json:"media_size"`
	ValidFrom   time.Time `json:"valid_from"`
	ValidUntil  time.Time `json:"valid_until"`
	MustAirBy   time.Time `json:"must_air_by,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	State       string    `json:"state"` // the commune's state as the publisher knows it
}

// FeedReport is a subscriber's report of one commune's tracking: POST
// /api/v1/feed/bulletins/{id}/report.
type FeedReport struct {
	AreaID    string    `json:"area_id"`
	State     string    `json:"state"` // scheduled, aired or declined
	How       string    `json:"how,omitempty"`
	At        time.Time `json:"at,omitzero"`
	AiredAt   time.Time `json:"aired_at,omitzero"`
	Receivers int       `json:"receivers,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	By        string    `json:"by,omitempty"`
}

// SignFeed makes the envelope of p signed with key.
func SignFeed(key ed25519.PrivateKey, p FeedPayload) (FeedEnvelope, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return FeedEnvelope{}, err
	}
	sig := ed25519.Sign(key, append([]byte(FeedSignatureLabel), b...))
	return FeedEnvelope{Format: FeedFormat, Payload: base64.StdEncoding.EncodeToString(b), Signature: base64.StdEncoding.EncodeToString(sig)}, nil
}

// VerifyFeed checks e's signature with pub and returns its payload; an
// envelope of another format, a bad signature or a payload that is not
// a feed is EINVALID.
func VerifyFeed(pub ed25519.PublicKey, e FeedEnvelope) (*FeedPayload, error) {
	if e.Format != FeedFormat {
		return nil, Errorf(EINVALID, "format: %q, not %s", e.Format, FeedFormat)
	}
	b, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, Errorf(EINVALID, "payload: not base64: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, Errorf(EINVALID, "signature: not a base64 ed25519 signature")
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, append([]byte(FeedSignatureLabel), b...), sig) {
		return nil, Errorf(EINVALID, "signature: does not verify with the publisher's key")
	}
	var p FeedPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, Errorf(EINVALID, "payload: %v", err)
	}
	for i, fb := range p.Bulletins {
		if err := ValidateID("bulletins.id", fb.ID); err != nil {
			return nil, err
		}
		if len(fb.MediaSHA256) != 64 {
			return nil, Errorf(EINVALID, "bulletins[%d].media_sha256: 64 hex digits", i)
		}
		if fb.Level != BulletinNormal && fb.Level != BulletinPriority {
			return nil, Errorf(EINVALID, "bulletins[%d].level: %q", i, fb.Level)
		}
	}
	return &p, nil
}

// FeedReportAllowed says whether a subscriber's report may take a
// commune from state from to state to: forward only.
func FeedReportAllowed(from, to string) error {
	ok := false
	switch to {
	case BulletinScheduled, BulletinDeclined:
		ok = from == BulletinReceived
	case BulletinAired:
		ok = from == BulletinReceived || from == BulletinScheduled || from == BulletinAired
	}
	if !ok {
		return Errorf(ECONFLICT, "state: %s cannot follow %s", to, from)
	}
	return nil
}
