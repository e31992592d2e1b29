package loa

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Relay is an external stream the station relays (the provincial station,
// VOV): a source URL with backups, played as a session like any other.
// The controller decodes it with ffmpeg, normalises its loudness and
// encodes it once; when the playing URL stalls or stays below SilenceDB
// for SilenceS seconds it fails over to the next, then to the fallback
// media item, and back to the first when it sounds again.
type Relay struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	URLs            []string  `json:"urls"`                        // the source, then its backups
	FallbackMediaID string    `json:"fallback_media_id,omitempty"` // plays when every URL failed; empty: silence
	SilenceDB       float64   `json:"silence_db,omitempty"`        // below it the source is silent; 0: DefaultRelaySilenceDB
	SilenceS        int       `json:"silence_s,omitempty"`         // silence or a stall this long fails over; 0: DefaultRelaySilenceS
	DurationS       int       `json:"duration_s,omitempty"`        // how long it plays; 0: to its schedule's end, or DefaultStreamMaxDuration played now
	CreatedBy       string    `json:"created_by,omitempty"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
}

// Relay defaults and bounds.
const (
	DefaultRelaySilenceDB = -50.0
	DefaultRelaySilenceS  = 5
	MaxRelayURLs          = 8
	MaxRelayURL           = 2000
)

// RelaySchemes are the URL schemes a relay may name: network sources only
// (Icecast/HTTP MP3, AAC, Ogg and HLS; RTMP; RTP; an SDP description
// fetched over HTTP as sdp://).
var RelaySchemes = []string{"http", "https", "rtmp", "rtp", "sdp"}

// Validate checks the relay's fields; that the fallback media exists is
// for the caller.
func (r *Relay) Validate() error {
	if err := ValidateID("id", r.ID); err != nil {
		return err
	}
	if err := ValidateName("name", r.Name, true); err != nil {
		return err
	}
	if len(r.URLs) == 0 {
		return Errorf(EINVALID, "urls: name at least one source URL")
	}
	if len(r.URLs) > MaxRelayURLs {
		return Errorf(EINVALID, "urls: at most %d, not %d", MaxRelayURLs, len(r.URLs))
	}
	for i, u := range r.URLs {
		if err := ValidateRelayURL(fmt.Sprintf("urls[%d]", i), u); err != nil {
			return err
		}
	}
	if r.FallbackMediaID != "" {
		if err := ValidateID("fallback_media_id", r.FallbackMediaID); err != nil {
			return err
		}
	}
	if math.IsNaN(r.SilenceDB) || r.SilenceDB < -90 || r.SilenceDB > 0 {
		return Errorf(EINVALID, "silence_db: must be within -90..0 dBFS (0: the default, %v)", DefaultRelaySilenceDB)
	}
	if r.SilenceS < 0 || r.SilenceS > 300 {
		return Errorf(EINVALID, "silence_s: must be within 0..300 seconds")
	}
	if r.DurationS < 0 || r.DurationS > 24*3600 {
		return Errorf(EINVALID, "duration_s: must be within 0..86400 seconds")
	}
	return nil
}

// ValidateRelayURL checks one source URL: absolute, of a RelaySchemes
// scheme, with a host, one line of at most MaxRelayURL bytes.
func ValidateRelayURL(field, raw string) error {
	if raw == "" || len(raw) > MaxRelayURL {
		return Errorf(EINVALID, "%s: a URL of 1..%d bytes", field, MaxRelayURL)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return controlRune(r) || r == ' ' }) {
		return Errorf(EINVALID, "%s: spaces and control characters are not allowed in a URL", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Errorf(EINVALID, "%s: not a URL: %v", field, err)
	}
	scheme := strings.ToLower(u.Scheme)
	ok := false
	for _, s := range RelaySchemes {
		ok = ok || s == scheme
	}
	if !ok {
		return Errorf(EINVALID, "%s: scheme %q is not allowed; use one of %s", field, u.Scheme, strings.Join(RelaySchemes, ", "))
	}
	if u.Host == "" || u.Hostname() == "" {
		return Errorf(EINVALID, "%s: names no host", field)
	}
	return nil
}

// RelayService keeps relays and plays them.
type RelayService interface {
	CreateRelay(ctx context.Context, r *Relay) error // ECONFLICT if the id exists
	UpdateRelay(ctx context.Context, r *Relay) error // ENOTFOUND if missing
	DeleteRelay(ctx context.Context, id string) error
	Relay(ctx context.Context, id string) (*Relay, error)
	Relays(ctx context.Context) ([]*Relay, error)
	// PlayRelay starts sess (targets, priority, created by, max duration:
	// 0 the relay's duration) relaying relay id now.
	PlayRelay(ctx context.Context, id string, sess *Session) error
	// RelayStates tells what every relay playing now plays.
	RelayStates() []RelayState
}

// RelayState is a playing relay's state, for the console.
type RelayState struct {
	RelayID   string    `json:"relay_id"`
	SessionID string    `json:"session_id"`
	URL       string    `json:"url,omitempty"` // the URL playing; empty on the fallback
	Fallback  bool      `json:"fallback"`      // the fallback media (or silence) plays
	Source    string    `json:"source,omitempty"`
	KbitS     int       `json:"kbit_s,omitempty"`
	LevelDB   float64   `json:"level_db"`
	Failovers int       `json:"failovers"`
	Since     time.Time `json:"since"`
}
