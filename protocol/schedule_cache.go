package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Programmes from cache (contract v2, receivers that announce CapCache).
// The controller lists each receiver's coming scheduled programmes in its
// cache manifest as items of kind "programme", one per occurrence, nearest
// first, so a receiver whose budget cannot hold them all keeps the soonest.
// An item's meta is the occurrence (ProgrammeMeta, JSON): the station-key
// signature of the item covers it, so no one but the controller can make a
// receiver play a file at a time. When the controller's stream of the
// occurrence has not arrived CacheGrace after its start, the receiver
// plays its copy on the occurrence's timeline and reports it
// (EventFromCache); a stream of the session arriving later takes over at
// the frame the copy has reached, so nothing plays twice.

// CacheGrace is how long after an occurrence's start a receiver waits for
// its stream before it plays its cached copy.
const CacheGrace = 2 * time.Second

// EventFromCache is the event a receiver sends once it has played (part
// of) a scheduled programme from its cache: Session is the occurrence's
// session, Msg its occurrence id (ProgrammeMeta.Occurrence), Stream the
// frames it played from the copy.
const EventFromCache = "from_cache"

// ProgrammeMeta is a programme cache item's meta: one scheduled
// occurrence. Its session timeline (play.t0_ms/ts0) is fixed in advance:
// t0_ms is StartMs and ts0 is TS0, and frame n of the programme is the
// RTP timestamp TS0 + n·960, played at StartMs + n·20 ms (+ the playout
// delay) whether it comes from the stream or from the copy. A stream that
// starts late starts at the frame of the wall clock, never from the
// beginning, so the two line up.
type ProgrammeMeta struct {
	Session    string `json:"session"`          // the session id the controller streams it as
	Occurrence string `json:"occ"`              // the occurrence: schedule id "@" start (RFC 3339, UTC)
	StartMs    int64  `json:"start_ms"`         // UTC ms of frame 0; the session's t0_ms
	TS0        uint32 `json:"ts0"`              // RTP timestamp of frame 0
	Frames     int    `json:"frames"`           // frames of the programme (20 ms each)
	EndMs      int64  `json:"end_ms,omitempty"` // stop here even if frames remain (the rule's end time); 0: none
	Priority   uint8  `json:"priority"`
}

// Start is the occurrence's start.
func (m ProgrammeMeta) Start() time.Time { return time.UnixMilli(m.StartMs) }

// End is when its last frame ends: after Frames, or at EndMs if sooner.
func (m ProgrammeMeta) End() time.Time {
	end := m.Start().Add(time.Duration(m.Frames) * FrameDuration)
	if m.EndMs > 0 && m.EndMs < end.UnixMilli() {
		end = time.UnixMilli(m.EndMs)
	}
	return end
}

// FrameAt is the index of the frame of the programme that plays at t
// (negative before the start).
func (m ProgrammeMeta) FrameAt(t time.Time) int {
	d := t.Sub(m.Start())
	if d < 0 {
		return -int((-d + FrameDuration - 1) / FrameDuration)
	}
	return int(d / FrameDuration)
}

// Encode is the meta as the item carries it.
func (m ProgrammeMeta) Encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// DecodeProgrammeMeta parses and checks a programme item's meta; unknown
// fields are refused.
func DecodeProgrammeMeta(s string) (ProgrammeMeta, error) {
	var m ProgrammeMeta
	if err := decodeStrict("programme meta", []byte(s), &m); err != nil {
		return ProgrammeMeta{}, err
	}
	if err := requireFields("programme meta", []byte(s), &m); err != nil {
		return ProgrammeMeta{}, err
	}
	switch {
	case m.Session == "" || len(m.Session) > 64:
		return ProgrammeMeta{}, errors.New("programme meta: session must be 1–64 bytes")
	case m.Occurrence == "" || len(m.Occurrence) > 160:
		return ProgrammeMeta{}, errors.New("programme meta: occ must be 1–160 bytes")
	case m.StartMs <= 0:
		return ProgrammeMeta{}, fmt.Errorf("programme meta: start_ms %d must be positive", m.StartMs)
	case m.Frames <= 0 || m.Frames > 4*3600*50:
		return ProgrammeMeta{}, fmt.Errorf("programme meta: frames %d outside 1..%d (4 h)", m.Frames, 4*3600*50)
	case m.EndMs != 0 && m.EndMs <= m.StartMs:
		return ProgrammeMeta{}, fmt.Errorf("programme meta: end_ms %d not after start_ms", m.EndMs)
	}
	return m, nil
}

// ProgrammeSession derives an occurrence's session id and RTP ts0 from
// its key (loa.Occurrence.Key) and a station secret: the controller
// streams the occurrence under the same id and timeline it announced
// days before, even after a restart. The secret keeps the ts0 of coming
// programmes unguessable to outsiders (RFC 3550 §5.1).
func ProgrammeSession(secret []byte, occurrence string) (session string, ts0 uint32) {
	h := sha256.New()
	h.Write([]byte("loa-programme-v1\x00"))
	h.Write(secret)
	h.Write([]byte{0})
	h.Write([]byte(occurrence))
	sum := h.Sum(nil)
	return "p-" + hex.EncodeToString(sum[:12]), binary.BigEndian.Uint32(sum[12:16])
}
