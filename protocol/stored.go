package protocol

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// OpPlayStored is the play_stored command (contract v2, receivers that
// announce CapCache): play stored alert message Code from local storage,
// at once, with no stream to wait for.
const OpPlayStored = "play_stored"

// MaxStoredRepeats bounds PlayStoredArgs.Repeats.
const MaxStoredRepeats = 20

// PlayStoredArgs are the args of a play_stored command. The receiver plays
// the item through its stream path (decode, volume, mute rules, events)
// under Session, so the delivery report reads its played/finished events
// as for a stream.
type PlayStoredArgs struct {
	Session  string `json:"session"`
	Code     int    `json:"code"`   // 1–999
	SHA256   string `json:"sha256"` // the item meant: a receiver holding another version of the code refuses (not_cached)
	Priority uint8  `json:"priority"`
	// Repeats is how many times the message plays back to back, 1–20;
	// absent: once.
	Repeats int `json:"repeats,omitempty"`
	// Volume, in the emergency band only, overrides the receiver's volume
	// and mute as PlayArgs.Volume does; 0 or absent: its own volume.
	Volume int `json:"volume,omitempty"`
	// UntilMs is the alert's expiry (UTC ms): nothing plays after it, a
	// repeat in progress stops there. 0 or absent: no expiry.
	UntilMs int64 `json:"until_ms,omitempty"`
}

// Plays is Repeats with its default.
func (a PlayStoredArgs) Plays() int { return max(a.Repeats, 1) }

// play_stored failure codes (Ack.Code), besides invalid.
const (
	StoredNotCached = "not_cached" // the receiver does not hold the code at that sha256
	StoredExpired   = "expired"    // until_ms has passed
	StoredBusy      = "busy"       // a session of a higher priority plays (a local trigger that would not preempt it)
)

// DecodePlayStoredArgs parses and checks play_stored args; unknown fields
// are refused.
func DecodePlayStoredArgs(b []byte) (PlayStoredArgs, error) {
	var a PlayStoredArgs
	if err := decodeStrict("play_stored", b, &a); err != nil {
		return PlayStoredArgs{}, err
	}
	if err := requireFields("play_stored", b, &a); err != nil {
		return PlayStoredArgs{}, err
	}
	switch {
	case a.Session == "" || len(a.Session) > 64:
		return PlayStoredArgs{}, errors.New("play_stored: session must be 1–64 bytes")
	case a.Code < MinStoredCode || a.Code > MaxStoredCode:
		return PlayStoredArgs{}, fmt.Errorf("play_stored: code %d outside %d..%d", a.Code, MinStoredCode, MaxStoredCode)
	case a.Repeats < 0 || a.Repeats > MaxStoredRepeats:
		return PlayStoredArgs{}, fmt.Errorf("play_stored: repeats %d outside 1..%d", a.Repeats, MaxStoredRepeats)
	case a.Volume < 0 || a.Volume > 100:
		return PlayStoredArgs{}, fmt.Errorf("play_stored: volume %d outside 0..100", a.Volume)
	case a.UntilMs < 0:
		return PlayStoredArgs{}, fmt.Errorf("play_stored: until_ms %d is negative", a.UntilMs)
	}
	if h, err := hex.DecodeString(a.SHA256); err != nil || len(h) != 32 {
		return PlayStoredArgs{}, errors.New("play_stored: sha256 must be 64 hex characters")
	}
	return a, nil
}
