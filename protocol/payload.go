package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// MaxPayload bounds every JSON body on the wire; larger ones are refused
// before they are parsed.
const MaxPayload = 16 << 10

// Status is published retained on dev/{id}/status. Boot increases on every
// boot of the device and Conn on every broker connection within a boot,
// each connection's Will carrying its own Conn, so a late offline Will of an
// earlier boot or connection can be told from a newer online status (see
// Older).
type Status struct {
	Online bool   `json:"online"`
	Boot   uint64 `json:"boot"`
	Conn   uint64 `json:"conn,omitempty"` // 0 (absent) from receivers that predate it
	TS     int64  `json:"ts"`             // unix milliseconds, device clock
	// Caps is what the receiver supports (contract v2: CapSRTPGCM, ...);
	// absent from v1 receivers, which get the v1 behaviour.
	Caps []string `json:"caps,omitempty"`
	// CacheBudget (contract v2, CapCache) is the storage, in bytes, the
	// receiver gives its cache; it keeps its cache within it, reporting
	// the items that do not fit as missing.
	CacheBudget int64 `json:"cache_budget,omitempty"`
}

// Has reports whether the status announces capability c.
func (s Status) Has(c string) bool {
	for _, x := range s.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// Older reports whether s comes from an earlier boot, or an earlier
// connection of the same boot, than (boot, conn): a status that must not
// overwrite the one it was compared with.
func (s Status) Older(boot, conn uint64) bool {
	return s.Boot < boot || (s.Boot == boot && s.Conn < conn)
}

// Command ops.
const (
	OpPlay     = "play"
	OpStop     = "stop"
	OpVolume   = "volume"
	OpMute     = "mute"
	OpAmp      = "amp"
	OpTest     = "test"
	OpReboot   = "reboot"
	OpFirmware = "firmware"
	OpConfig   = "config"
)

// Command is sent on dev/{id}/cmd. A receiver ignores (acks "expired") a
// command whose Exp has passed, so nothing stale runs after a reconnect.
type Command struct {
	ID   string          `json:"id"`
	Op   string          `json:"op"`
	Exp  int64           `json:"exp"` // unix milliseconds
	Args json.RawMessage `json:"args,omitempty"`
	// Fence (contract v2, to receivers announcing CapFence) is the sending
	// controller's fence: a receiver refuses a command of a lower fence
	// than the highest it has seen.
	Fence *Fence `json:"fence,omitempty"`
}

// Expired reports whether the command is stale at now.
func (c *Command) Expired(now time.Time) bool { return now.UnixMilli() > c.Exp }

// PlayArgs are the args of a play command: where the stream comes from and
// how the receiver proves who it is when it opens its NAT.
type PlayArgs struct {
	Session  string `json:"session"`
	Addr     string `json:"addr"`            // controller's media address host:port (RTP and RTCP)
	SSRC     uint32 `json:"ssrc"`            // the stream's SSRC
	PT       uint8  `json:"pt"`              // RTP payload type
	RecvSSRC uint32 `json:"recv_ssrc"`       // SSRC the receiver uses in its RTCP
	Token    string `json:"token,omitempty"` // v1 only (no Keys): hex, sent in the RTCP APP packet to authenticate
	DelayMs  int    `json:"delay_ms"`        // playout delay D, the same on every receiver
	Priority uint8  `json:"priority"`
	Frames   int    `json:"frames,omitempty"` // frames in the programme, 0 when unknown (live)
	// EndFrame (contract v2) is the index, from 0, of the session's last
	// frame when it is known (recorded programmes); 0 or absent: unknown
	// (live). Frame i is the one whose RTP timestamp a Sender Report's
	// packet count places at i; the receiver stops after playing it even if
	// every BYE is lost.
	EndFrame int `json:"end_frame,omitempty"`
	// Volume, in the emergency band only, is the level the receiver plays
	// this session at, whatever its volume and mute; it restores its own
	// volume when the session ends. 0 or absent: its own volume.
	Volume int `json:"volume,omitempty"`
	// Keys (contract v2), sent only to receivers that announce CapSRTPGCM:
	// the stream and its RTCP are SRTP/SRTCP under these keys, the receiver
	// drops every packet that does not authenticate and accepts media only
	// from Addr; Token is then absent.
	Keys *SRTPKeys `json:"keys,omitempty"`
	// Fence (contract v2) is the controller's fence the keys were derived
	// with; receivers that announce CapFence ignore a play of a lower fence.
	Fence *Fence `json:"fence,omitempty"`
	// T0Ms and TS0 (contract v2, sent to receivers that announce
	// CapTimeline) fix the session timeline: RTP timestamp TS0 is the UTC
	// instant T0Ms (ms since the Unix epoch), and timestamps advance exactly
	// with it, so UTC(ts) = T0Ms + (ts − TS0)/48 kHz for every packet.
	// 0 or absent T0Ms: no timeline, place audio by the Sender Reports.
	T0Ms int64  `json:"t0_ms,omitempty"`
	TS0  uint32 `json:"ts0,omitempty"`
	// OffsetMs (contract v2) is this receiver's delay offset, added to
	// DelayMs: MinOffsetMs..MaxOffsetMs, and DelayMs + OffsetMs ≥ MinLeadMs.
	OffsetMs int `json:"offset_ms,omitempty"`
}

// Bounds of a receiver's delay offset (PlayArgs.OffsetMs): no receiver is
// asked to play audio before it can have arrived.
const (
	MinOffsetMs = -150
	MaxOffsetMs = 500
	MinLeadMs   = 100
)

// StopArgs are the args of a stop command.
type StopArgs struct {
	Session string `json:"session,omitempty"` // absent: whatever plays
}

// VolumeArgs are the args of a volume command.
type VolumeArgs struct {
	Level int `json:"level"` // 0–100
}

// Ack states.
const (
	AckAccepted = "accepted"
	AckProgress = "progress"
	AckDone     = "done"
	AckFailed   = "failed"
	AckExpired  = "expired"
)

// Ack answers a command on dev/{id}/ack, correlated by ID.
type Ack struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Code  string `json:"code,omitempty"`
	Msg   string `json:"msg,omitempty"`
	// Result is an op's outcome, carried only by a final "done" or
	// "failed" ack of an op that has one (test: a TestResult).
	Result json.RawMessage `json:"result,omitempty"`
}

// Final reports whether no further ack follows this one.
func (a *Ack) Final() bool {
	return a.State == AckDone || a.State == AckFailed || a.State == AckExpired
}

// StreamStats count what a receiver did with one stream.
type StreamStats struct {
	Received     uint64  `json:"received"`
	Lost         uint64  `json:"lost"`
	Late         uint64  `json:"late"`
	Concealed    uint64  `json:"concealed"`
	FECRecovered uint64  `json:"fec_recovered"`
	Played       uint64  `json:"played"`
	Decoded      uint64  `json:"decoded"`
	JitterMs     float64 `json:"jitter_ms"`
	// AuthFailures (v2) counts packets dropped unplayed: from an address
	// other than play.addr, failing SRTP authentication, or replayed.
	AuthFailures uint64 `json:"auth_failures,omitempty"`
	// Silence (v2) counts frames played as silence because the stream had
	// a gap longer than the concealment bound (MaxConcealFrames); of Played.
	Silence uint64 `json:"silence,omitempty"`
}

// Telemetry is published periodically on dev/{id}/tele.
type Telemetry struct {
	TS      int64        `json:"ts"`
	RSSI    int          `json:"rssi"`
	Net     string       `json:"net,omitempty"` // "4g", "eth", ...
	IP      string       `json:"ip,omitempty"`  // the receiver's own address on its uplink (behind NAT, not what the controller sees)
	Volume  int          `json:"volume"`
	Muted   bool         `json:"muted"`
	Temp    float64      `json:"temp"` // °C
	Uptime  int64        `json:"uptime"`
	FW      string       `json:"fw,omitempty"`
	Amp     *bool        `json:"amp,omitempty"`     // amplifier relay on; absent when the receiver has no relay
	Session string       `json:"session,omitempty"` // playing now
	Stream  *StreamStats `json:"stream,omitempty"`
	// Sync (contract v2, timeline) is the receiver's clock-sync state.
	Sync *SyncReport `json:"sync,omitempty"`
	// Power (contract v2) is the receiver's power supply; absent from
	// receivers without a battery.
	Power *PowerReport `json:"power,omitempty"`
	// Cache (contract v2, CapCache) is what the receiver's cache holds.
	Cache *CacheHolding `json:"cache,omitempty"`
}

// SyncReport is a receiver's clock synchronisation, in the spirit of
// RFC 7244's synchronisation reports.
type SyncReport struct {
	Source   string  `json:"source"`              // SyncRTCPXR, SyncNTP, SyncGNSS or SyncNone
	OffsetMs float64 `json:"offset_ms"`           // estimated offset of the receiver's clock from the controller's, being corrected
	ErrMs    float64 `json:"err_ms"`              // estimated bound of the error of that estimate
	RTTMs    float64 `json:"rtt_ms"`              // round trip of the best recent time exchange
	DriftPPM float64 `json:"drift_ppm"`           // estimated drift of the receiver's clock
	CorrMin  int     `json:"corrections_per_min"` // samples inserted or removed in the last minute
	Resyncs  int     `json:"resyncs"`             // hard re-syncs (> 50 ms) since boot
}

// TimeExchangeInterval is the least spacing of one receiver's time
// exchanges (RTCP XR RRTR → DLRR); the controller ignores faster ones.
const TimeExchangeInterval = time.Second

// Clock sources a receiver names in SyncReport.Source.
const (
	SyncRTCPXR = "rtcp-xr" // the RTCP XR RRTR/DLRR exchange with the controller
	SyncNTP    = "ntp"     // NTP (e.g. chrony against the controller's SNTP responder)
	SyncGNSS   = "gnss"    // a GNSS-disciplined clock
	SyncNone   = "none"
)

// Event types.
const (
	EventPlayed   = "played"    // first frame of a session played
	EventFinished = "finished"  // a session ended on this receiver; Stream holds its totals
	EventAmpFault = "amp_fault" // the amplifier reports a fault; msg says which
	EventAmpOK    = "amp_ok"    // the amplifier fault has cleared
	EventPower    = "power"
	EventTamper   = "tamper"
)

// Event is an unsolicited report on dev/{id}/event.
type Event struct {
	Type    string       `json:"type"`
	TS      int64        `json:"ts"`
	Session string       `json:"session,omitempty"`
	Stream  *StreamStats `json:"stream,omitempty"`
	Msg     string       `json:"msg,omitempty"`
}

func decode(kind string, b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("%s: empty payload", kind)
	}
	if len(b) > MaxPayload {
		return fmt.Errorf("%s: payload of %d bytes exceeds %d", kind, len(b), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: trailing data after the JSON object", kind)
	}
	return nil
}

// decodeContract is decode that also refuses a payload without a field its
// type requires (see required.go).
func decodeContract(kind string, b []byte, v any) error {
	if err := decode(kind, b, v); err != nil {
		return err
	}
	return requireFields(kind, b, v)
}

// DecodeStatus parses and checks a status payload.
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	if err := decodeContract("status", b, &s); err != nil {
		return Status{}, err
	}
	if len(s.Caps) > 16 {
		return Status{}, fmt.Errorf("status: %d caps, at most 16", len(s.Caps))
	}
	for _, c := range s.Caps {
		if c == "" || len(c) > 32 {
			return Status{}, errors.New("status: each cap must be 1–32 bytes")
		}
	}
	if s.CacheBudget < 0 {
		return Status{}, fmt.Errorf("status: cache_budget %d is negative", s.CacheBudget)
	}
	return s, nil
}

// DecodeCommand parses and checks a command.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := decodeContract("cmd", b, &c); err != nil {
		return Command{}, err
	}
	if c.ID == "" || len(c.ID) > 64 {
		return Command{}, errors.New("cmd: id must be 1–64 bytes")
	}
	if !KnownOp(c.Op) {
		return Command{}, fmt.Errorf("cmd: unknown op %q", c.Op)
	}
	if c.Exp <= 0 {
		return Command{}, errors.New("cmd: exp is required")
	}
	return c, nil
}

// DecodePlayArgs parses and checks play args.
func DecodePlayArgs(b []byte) (PlayArgs, error) {
	var p PlayArgs
	if err := decodeContract("play", b, &p); err != nil {
		return PlayArgs{}, err
	}
	switch {
	case p.Session == "":
		return PlayArgs{}, errors.New("play: session is required")
	case p.Addr == "":
		return PlayArgs{}, errors.New("play: addr is required")
	case p.Keys == nil && len(p.Token) != 2*TokenLen:
		return PlayArgs{}, fmt.Errorf("play: token must be %d hex digits", 2*TokenLen)
	case p.Keys != nil && p.Token != "":
		return PlayArgs{}, errors.New("play: token and keys are exclusive (keys: SRTCP authenticates)")
	case p.Keys != nil && p.Fence == nil:
		return PlayArgs{}, errors.New("play: fence is required with keys")
	case p.DelayMs < 0 || p.DelayMs > 10000:
		return PlayArgs{}, errors.New("play: delay_ms must be within 0..10000")
	case p.Volume < 0 || p.Volume > 100:
		return PlayArgs{}, fmt.Errorf("play: volume %d outside 0..100", p.Volume)
	case p.EndFrame < 0:
		return PlayArgs{}, fmt.Errorf("play: end_frame %d is negative", p.EndFrame)
	case p.T0Ms < 0:
		return PlayArgs{}, fmt.Errorf("play: t0_ms %d is negative", p.T0Ms)
	case p.OffsetMs < MinOffsetMs || p.OffsetMs > MaxOffsetMs:
		return PlayArgs{}, fmt.Errorf("play: offset_ms %d outside %d..%d", p.OffsetMs, MinOffsetMs, MaxOffsetMs)
	case p.OffsetMs != 0 && p.DelayMs+p.OffsetMs < MinLeadMs:
		return PlayArgs{}, fmt.Errorf("play: delay_ms + offset_ms = %d, below %d ms", p.DelayMs+p.OffsetMs, MinLeadMs)
	}
	if p.Keys != nil {
		if _, _, err := p.Keys.Material(); err != nil {
			return PlayArgs{}, fmt.Errorf("play: %w", err)
		}
	}
	return p, nil
}

// DecodeStopArgs parses stop args.
func DecodeStopArgs(b []byte) (StopArgs, error) {
	var s StopArgs
	if err := decodeContract("stop", b, &s); err != nil {
		return StopArgs{}, err
	}
	return s, nil
}

// DecodeVolumeArgs parses and checks volume args.
func DecodeVolumeArgs(b []byte) (VolumeArgs, error) {
	var v VolumeArgs
	if err := decodeContract("volume", b, &v); err != nil {
		return VolumeArgs{}, err
	}
	if v.Level < 0 || v.Level > 100 {
		return VolumeArgs{}, fmt.Errorf("volume: level %d outside 0..100", v.Level)
	}
	return v, nil
}

// DecodeAck parses and checks an ack.
func DecodeAck(b []byte) (Ack, error) {
	var a Ack
	if err := decodeContract("ack", b, &a); err != nil {
		return Ack{}, err
	}
	if a.ID == "" {
		return Ack{}, errors.New("ack: id is required")
	}
	switch a.State {
	case AckAccepted, AckProgress, AckDone, AckFailed, AckExpired:
	default:
		return Ack{}, fmt.Errorf("ack: unknown state %q", a.State)
	}
	return a, nil
}

// DecodeTelemetry parses and checks a telemetry payload.
func DecodeTelemetry(b []byte) (Telemetry, error) {
	var t Telemetry
	if err := decodeContract("tele", b, &t); err != nil {
		return Telemetry{}, err
	}
	if t.Volume < 0 || t.Volume > 100 {
		return Telemetry{}, fmt.Errorf("tele: volume %d outside 0..100", t.Volume)
	}
	if len(t.Net) > 16 || len(t.FW) > 64 || len(t.Session) > 64 {
		return Telemetry{}, errors.New("tele: net, fw or session too long")
	}
	if t.IP != "" {
		if _, err := netip.ParseAddr(t.IP); err != nil || len(t.IP) > 45 {
			return Telemetry{}, fmt.Errorf("tele: ip %q is not an IP address", truncateText(t.IP, 64))
		}
	}
	if math.IsNaN(t.Temp) || math.IsInf(t.Temp, 0) || t.Temp < -100 || t.Temp > 250 {
		return Telemetry{}, fmt.Errorf("tele: temp %v outside -100..250 °C", t.Temp)
	}
	if t.Power != nil {
		if err := t.Power.check(); err != nil {
			return Telemetry{}, err
		}
	}
	if t.Cache != nil {
		if err := t.Cache.check(); err != nil {
			return Telemetry{}, fmt.Errorf("tele: %w", err)
		}
	}
	return t, nil
}

// DecodeEvent parses and checks an event.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if err := decodeContract("event", b, &e); err != nil {
		return Event{}, err
	}
	if e.Type == "" || len(e.Type) > 32 {
		return Event{}, errors.New("event: type must be 1–32 bytes")
	}
	return e, nil
}

// truncateText shortens untrusted text quoted in an error.
func truncateText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return s
}
