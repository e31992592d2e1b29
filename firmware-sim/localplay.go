package firmwaresim

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Why a local play ended, besides stop and preempted.
const (
	EndPlayedOut = "played_out" // every repeat of a local play played
	EndExpired   = "expired"    // a local play's Until passed
)

// LocalPlay asks the receiver to play an item of its cache (contract:
// play_stored), as a play_stored command, an SMS trigger or a programme
// aired from cache does. It plays through the stream path: the item's
// 20 ms Opus packets fill the jitter buffer at once and the play-out
// clock decodes them, with the receiver's volume (or the override), the
// mute rules, the played and finished events and the session's stats.
type LocalPlay struct {
	Session   string
	Kind, Key string // the item, e.g. protocol.CacheKindStored and "12"
	SHA256    string // the version meant; "" takes whatever is held
	Priority  uint8
	Repeats   int       // plays back to back; below 1: once
	Volume    int       // in the emergency band: the volume it plays at; 0: its own
	Until     time.Time // nothing plays after it; zero: no expiry
	// Force replaces whatever plays (a controller's command: the
	// controller arbitrated). Otherwise a session of a higher priority
	// keeps playing and the local play is refused busy; an emergency
	// local play preempts any stream below the emergency band.
	Force bool
	// From is the first frame of the item to play and At when it plays
	// (zero: now): a programme aired from cache joins its timeline at the
	// frame of the wall clock (offline.go). OnEnd, if set, is called with
	// the play's stats once it has ended.
	From  int
	At    time.Time
	OnEnd func(SessionStats)
}

// LocalPlayError is why a local play was refused; Code is the ack code.
type LocalPlayError struct{ Code, Msg string }

func (e *LocalPlayError) Error() string { return e.Code + ": " + e.Msg }

// PlayLocal starts p, or refuses it with a *LocalPlayError. A local play
// of the session already playing from the same item is left alone (a
// command sent again after a reconnect must not restart it); a play
// command of that session later replaces it, so a stream wins over the
// cached copy.
func (r *Receiver) PlayLocal(p LocalPlay) error {
	item, data, ok := r.cached(p.Kind, p.Key)
	ref := p.Kind + ":" + p.Key
	switch {
	case !ok:
		return &LocalPlayError{protocol.StoredNotCached, ref + " is not in the cache"}
	case p.SHA256 != "" && !strings.EqualFold(item.SHA256, p.SHA256):
		return &LocalPlayError{protocol.StoredNotCached, fmt.Sprintf("%s is held at sha256 %s, not %s", ref, item.SHA256, p.SHA256)}
	case !p.Until.IsZero() && !time.Now().Before(p.Until):
		return &LocalPlayError{protocol.StoredExpired, "expired at " + p.Until.UTC().Format(time.RFC3339)}
	case p.Session == "":
		return &LocalPlayError{CodeInvalid, "no session"}
	}
	frames, err := oggOpusFrames(data)
	if err != nil {
		return &LocalPlayError{CodeInvalid, ref + ": " + err.Error()}
	}
	if p.From > 0 {
		if p.From >= len(frames) {
			return &LocalPlayError{protocol.StoredExpired, fmt.Sprintf("%s: frame %d is past its end", ref, p.From)}
		}
		frames = frames[p.From:]
	}
	p.Repeats = max(p.Repeats, 1)

	r.localMu.Lock()
	defer r.localMu.Unlock()
	r.mu.Lock()
	cur := r.current
	r.mu.Unlock()
	if cur != nil && !cur.isEnded() {
		switch {
		case cur.local == ref && cur.args.Session == p.Session:
			return nil // already playing
		case !p.Force && cur.args.Priority > p.Priority:
			return &LocalPlayError{protocol.StoredBusy, fmt.Sprintf("session %s of priority %d plays", cur.args.Session, cur.args.Priority)}
		}
	}
	s, err := newLocalSession(r, p, ref, frames)
	if err != nil {
		return &LocalPlayError{CodeUnavailable, err.Error()}
	}
	r.mu.Lock()
	old := r.current
	r.current = s
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	if old != nil {
		old.stop(EndPreempted)
	}
	s.begin()
	r.log.Info("playing from cache", "session", p.Session, "item", ref, "repeats", p.Repeats)
	return nil
}

// newLocalSession is a session whose jitter buffer holds the whole item,
// Repeats times, from now: no socket, no RTCP; it ends when played out.
func newLocalSession(r *Receiver, p LocalPlay, ref string, frames [][]byte) (*session, error) {
	total := len(frames) * p.Repeats
	s := &session{
		r:          r,
		args:       protocol.PlayArgs{Session: p.Session, Priority: p.Priority, Volume: p.Volume, Frames: total, EndFrame: total - 1},
		log:        r.log.With("session", p.Session, "item", ref),
		local:      ref,
		keepPCM:    r.cfg.KeepPCM && r.cfg.Decode,
		impair:     r.cfg.Impair,
		pcmBuf:     make([]int16, protocol.FrameSamples),
		stopc:      make(chan struct{}),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		buf:        make(map[int64][]byte, total),
		st:         SessionStats{Session: p.Session, Local: ref},
	}
	close(s.readerDone) // no reader
	if r.cfg.Decode {
		var err error
		if s.dec, err = newDecoder(); err != nil {
			return nil, fmt.Errorf("opus decoder: %w", err)
		}
		if r.cfg.WAVDir != "" {
			name := fileSafe(r.cfg.ID + "-" + p.Session + ".wav")
			if s.wav, err = createWAV(filepath.Join(r.cfg.WAVDir, name)); err != nil {
				return nil, err
			}
		}
	}
	now := time.Now()
	if !p.At.IsZero() {
		now = p.At
	}
	s.onEnd = p.OnEnd
	s.started = true
	s.ext0 = extOffset
	s.next, s.maxExt = s.ext0, s.ext0+int64(total)-1
	s.firstArr, s.lastArrival, s.base, s.arrivalBase = now, now, now, now
	s.lastTS, s.haveLast = uint32((total-1)*protocol.FrameSamples), true
	for i := range total {
		s.buf[s.ext0+int64(i)] = frames[i%len(frames)]
	}
	s.st.Received = uint64(total)
	if !p.Until.IsZero() {
		s.expiry = time.AfterFunc(time.Until(p.Until), func() { s.stop(EndExpired) })
	}
	s.poke() // the play-out clock starts at once
	return s, nil
}

// playStoredCmd is the play_stored command: a local play of a stored
// message the controller asked for (it arbitrated, so it preempts).
func (r *Receiver) playStoredCmd(cmd protocol.Command) {
	a, err := protocol.DecodePlayStoredArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
		return
	}
	r.ack(cmd.ID, protocol.AckAccepted, "", "")
	p := LocalPlay{Session: a.Session, Kind: protocol.CacheKindStored, Key: protocol.StoredKey(a.Code), SHA256: a.SHA256,
		Priority: a.Priority, Repeats: a.Plays(), Volume: a.Volume, Force: true}
	if a.UntilMs > 0 {
		p.Until = time.UnixMilli(a.UntilMs)
	}
	if err := r.PlayLocal(p); err != nil {
		code, msg := CodeUnavailable, err.Error()
		var le *LocalPlayError
		if errors.As(err, &le) {
			code, msg = le.Code, le.Msg
		}
		r.log.Warn("play_stored refused", "session", a.Session, "code", a.Code, "err", err)
		r.ack(cmd.ID, protocol.AckFailed, code, msg)
		return
	}
	r.ack(cmd.ID, protocol.AckDone, "", "")
}

// oggOpusFrames returns the audio packets of an Ogg Opus file (one
// logical stream, as the controller encodes media: 48 kHz mono, 20 ms
// packets), after its OpusHead and OpusTags headers. The file's SHA-256
// and signature were checked when it was cached, so CRCs are not.
func oggOpusFrames(b []byte) ([][]byte, error) {
	var pkts [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" || b[4] != 0 {
			return nil, errors.New("not an Ogg file")
		}
		nseg := int(b[26])
		if len(b) < 27+nseg {
			return nil, errors.New("truncated Ogg page")
		}
		lace := b[27 : 27+nseg]
		body := b[27+nseg:]
		size := 0
		for _, l := range lace {
			size += int(l)
		}
		if len(body) < size {
			return nil, errors.New("truncated Ogg page")
		}
		for _, l := range lace {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = b[27+nseg+size:]
	}
	if len(pkts) < 3 || len(pkts[0]) < 8 || string(pkts[0][:8]) != "OpusHead" || len(pkts[1]) < 8 || string(pkts[1][:8]) != "OpusTags" {
		return nil, errors.New("not an Ogg Opus file with audio")
	}
	frames := pkts[2:]
	for i, f := range frames {
		if n, err := opusPacketSamples(f); err != nil || n != protocol.FrameSamples {
			return nil, fmt.Errorf("packet %d is not one 20 ms Opus frame", i)
		}
	}
	return frames, nil
}
