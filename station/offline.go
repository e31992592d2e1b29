package station

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Programmes from cache (contract: Programmes from cache). Receivers that
// announce `cache` hold their coming week of scheduled programmes as
// programme items of their cache manifest, one per occurrence, nearest
// first; each occurrence's session id and timeline are derived from the
// occurrence and the station key, so the controller streams it under the
// id and timeline it announced, even after a restart, and a receiver
// that played its copy while the controller was down is taken over
// frame for frame when the stream comes.

// ProgrammeWindow is how far ahead receivers hold scheduled programmes.
const ProgrammeWindow = 7 * 24 * time.Hour

// errProgrammeOver is a late start of a programme on a fixed timeline
// whose last frame has passed: receivers holding it have aired it.
var errProgrammeOver = errors.New("the programme ended while the controller could not stream it")

// Programmes announces and streams cached programmes. The zero value (or
// nil) is off: occurrences get a fresh session and timeline at their
// start, as without receivers' caches.
type Programmes struct {
	Key      ed25519.PrivateKey // the station key: signs the items, seeds the session ids
	Schedule interface {
		Agenda(ctx context.Context, from, to time.Time) ([]loa.Occurrence, error)
	}
	DB *store.DB
	// Every is how often Run looks for a change of the programmes
	// receivers are to hold (a schedule edited, one ended, the window
	// moved); default a minute. Changed asks for a look now.
	Every time.Duration

	mu     sync.Mutex
	digest string // of the set at the last look
	kick   chan struct{}
}

// Changed asks Run to look at the programmes now (a schedule changed).
func (p *Programmes) Changed() {
	if !p.on() {
		return
	}
	p.mu.Lock()
	if p.kick == nil {
		p.kick = make(chan struct{}, 1)
	}
	k := p.kick
	p.mu.Unlock()
	select {
	case k <- struct{}{}:
	default:
	}
}

// Prime takes the programme set receivers were sent before a restart
// (the sets' version is kept) as the last look; call it before the API
// serves, so a schedule created at once is a change.
func (p *Programmes) Prime(ctx context.Context) error {
	if !p.on() {
		return nil
	}
	d, err := p.digestNow(ctx, time.Now())
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.digest = d
	p.mu.Unlock()
	return nil
}

// Run looks at the programme set every p.Every and when Changed, and
// calls changed (Stored.Changed: a new version of the receivers' sets)
// whenever it differs from the last look, until ctx ends.
func (p *Programmes) Run(ctx context.Context, changed func()) {
	if !p.on() {
		return
	}
	p.Changed() // makes the kick channel, and looks at once
	p.mu.Lock()
	k := p.kick
	p.mu.Unlock()
	every := p.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-k:
		}
		d, err := p.digestNow(ctx, time.Now())
		if err != nil {
			continue
		}
		p.mu.Lock()
		moved := d != p.digest && p.digest != "" // unprimed: the first look is the set as sent
		p.digest = d
		p.mu.Unlock()
		if moved {
			changed()
		}
	}
}

// digestNow sums the programmes receivers are to hold at now: every
// announced occurrence not yet over, its targets and media.
func (p *Programmes) digestNow(ctx context.Context, now time.Time) (string, error) {
	occs, err := p.Schedule.Agenda(ctx, now.Add(-4*time.Hour), now.Add(ProgrammeWindow))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, occ := range occs {
		if _, _, ok := p.Session(occ); !ok {
			continue
		}
		m, err := p.DB.Media(ctx, occ.Content.MediaID)
		if err != nil {
			continue
		}
		end := occ.At.Add(time.Duration(m.Frames) * protocol.FrameDuration)
		if !occ.End.IsZero() && occ.End.Before(end) {
			end = occ.End
		}
		if !now.Before(end) {
			continue
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s\x00", occ.Key(), m.Hash, occ.Targets.String(), occ.Priority, occ.End)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CacheFile reports whether sha is the media of a programme receivers may
// hold now (/cache/ serves it to them); Stored's CacheSource.
func (p *Programmes) CacheFile(ctx context.Context, sha string) (bool, error) {
	if !p.on() {
		return false, nil
	}
	now := time.Now()
	occs, err := p.Schedule.Agenda(ctx, now.Add(-4*time.Hour), now.Add(ProgrammeWindow))
	if err != nil {
		return false, err
	}
	for _, occ := range occs {
		if _, _, ok := p.Session(occ); !ok {
			continue
		}
		if m, err := p.DB.Media(ctx, occ.Content.MediaID); err == nil && strings.EqualFold(m.Hash, sha) {
			return true, nil
		}
	}
	return false, nil
}

// programmeBytes bounds the JSON of one receiver's programme items in a
// manifest, leaving the rest of the command's payload to its stored
// messages; programmeMax bounds their number likewise.
const (
	programmeBytes = protocol.MaxPayload - 4<<10
	programmeMax   = protocol.MaxCacheItems - 64
)

// CacheItems lists device's programme items, nearest first, as many as fit
// in a manifest beside its stored messages (the farthest wait for a later
// one); Stored's CacheSource.
func (p *Programmes) CacheItems(ctx context.Context, device string) ([]protocol.CacheItem, error) {
	items, err := p.Items(ctx, device, time.Now(), programmeMax)
	if err != nil {
		return nil, err
	}
	size := 0
	for i, it := range items {
		b, _ := json.Marshal(it)
		if size += len(b) + 1; size > programmeBytes {
			return items[:i], nil
		}
	}
	return items, nil
}

// on reports whether occurrences are announced to receivers' caches.
func (p *Programmes) on() bool { return p != nil && len(p.Key) == ed25519.PrivateKeySize }

// Session is occ's session id and RTP ts0 (protocol.ProgrammeSession),
// ok false when p is off or occ is not a recorded programme (a playlist's
// content is not announced).
func (p *Programmes) Session(occ loa.Occurrence) (id string, ts0 uint32, ok bool) {
	if !p.on() || occ.Content.MediaID == "" {
		return "", 0, false
	}
	id, ts0 = protocol.ProgrammeSession(p.Key.Seed(), occ.Key())
	return id, ts0, true
}

// Items returns device's programme items for the occurrences that target
// it from now to ProgrammeWindow ahead (those under way included), nearest
// first, at most max, signed with the station key; each file's URL is
// base followed by its sha256.
func (p *Programmes) Items(ctx context.Context, device string, now time.Time, max int) ([]protocol.CacheItem, error) {
	if !p.on() {
		return nil, nil
	}
	occs, err := p.Schedule.Agenda(ctx, now.Add(-4*time.Hour), now.Add(ProgrammeWindow))
	if err != nil {
		return nil, err
	}
	areas, err := p.DB.Areas(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := p.DB.Devices(ctx)
	if err != nil {
		return nil, err
	}
	tree := loa.NewAreaTree(areas)
	var items []protocol.CacheItem
	for _, occ := range occs { // in time order
		if len(items) >= max {
			break
		}
		id, ts0, ok := p.Session(occ)
		if !ok {
			continue
		}
		ids, err := occ.Targets.Resolve(tree, devs)
		if err != nil || !contains(ids, device) {
			continue
		}
		m, err := p.DB.Media(ctx, occ.Content.MediaID)
		if err != nil || m.Frames <= 0 || m.Hash == "" || m.Size <= 0 {
			continue
		}
		meta := protocol.ProgrammeMeta{Session: id, Occurrence: occ.Key(), StartMs: occ.At.UnixMilli(), TS0: ts0,
			Frames: m.Frames, Priority: uint8(occ.Priority)}
		if !occ.End.IsZero() {
			meta.EndMs = occ.End.UnixMilli()
		}
		if !now.Before(meta.End()) {
			continue // over
		}
		it := protocol.CacheItem{Kind: protocol.CacheKindProgramme, Key: id, SHA256: m.Hash, Size: m.Size, Meta: meta.Encode()}
		it.Sig = protocol.SignCacheItem(p.Key, it)
		items = append(items, it)
	}
	return items, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lateJoin is how far ahead of the wall clock a late programme on a fixed
// timeline starts: time for its receivers to tune.
const lateJoin = 500 * time.Millisecond

// alignToTimeline makes a session on a timeline fixed in advance that
// starts late begin at the frame of the wall clock (+ lateJoin) rather
// than from its beginning: frames before it are skipped in src, and
// ScheduledAt becomes the instant of the first frame sent. It returns the
// frames left to send, or errProgrammeOver. A session without a fixed
// timeline is left as it is.
func alignToTimeline(sess *loa.Session, src source, frames int, now time.Time) (int, error) {
	if sess.T0Ms == 0 {
		return frames, nil
	}
	t0 := time.UnixMilli(sess.T0Ms)
	k := 0
	if now.After(t0) {
		k = int((now.Add(lateJoin).Sub(t0) + protocol.FrameDuration - 1) / protocol.FrameDuration)
	}
	if frames > 0 && k >= frames {
		return 0, errProgrammeOver
	}
	if k > 0 {
		sk, ok := src.(interface{ Skip(int) (int, error) })
		if !ok {
			return 0, fmt.Errorf("session %s: its content cannot join its timeline late", sess.ID)
		}
		if n, err := sk.Skip(k); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		} else if n < k {
			return 0, errProgrammeOver
		}
	}
	sess.ScheduledAt = t0.Add(time.Duration(k) * protocol.FrameDuration)
	return frames - k, nil
}

// airedFromCache writes device's "aired from cache" line for a programme
// it played from its cache (protocol.EventFromCache), once per session
// and receiver: the event may come again (QoS 1), days later for a
// receiver that was cut off. Written in batches with the aired lines.
func (s *Sessions) airedFromCache(device string, ev protocol.Event) {
	if ev.Session == "" || ev.Stream == nil || ev.Stream.Played <= ev.Stream.Silence {
		return
	}
	e := loa.PlayLogEntry{At: time.Now().UTC(), Event: loa.PlayAiredFromCache, SessionID: ev.Session, Devices: []string{device},
		Detail: fmt.Sprintf("played %v from its cache while the controller's stream did not reach it",
			time.Duration(ev.Stream.Played-ev.Stream.Silence)*protocol.FrameDuration)}
	if id, at, ok := strings.Cut(ev.Msg, "@"); ok {
		if occ, err := time.Parse(time.RFC3339Nano, at); err == nil {
			e.ScheduleID, e.Occurrence, e.By = id, occ.UTC(), loa.Origin{Kind: loa.OriginSchedule, ID: id}.String()
			if sc, err := s.db.Schedule(context.Background(), id); err == nil {
				e.Content, e.Areas = sc.Content, sc.Targets.Areas
			}
		}
	}
	key := ev.Session + "/" + device
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fromCache[key] {
		return
	}
	if s.fromCache == nil {
		s.fromCache = make(map[string]bool)
	}
	s.fromCache[key] = true
	s.airedQ = append(s.airedQ, e)
	if !s.flushing {
		s.flushing = true
		go s.flushAired()
	}
}

// deliveryFromCache marks device's line of the session's delivery report,
// while the report is followed, as evidenced by its cached copy.
func (s *Sessions) deliveryFromCache(device string, ev protocol.Event) {
	defer s.tell()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, l := s.lineLocked(ev.Session, device)
	if l == nil {
		return // not followed (the controller never started it, or its report settled): the play log line records it
	}
	l.Evidence = loa.EvidenceCache
	if l.StartedAt.IsZero() {
		l.StartedAt = time.UnixMilli(ev.TS).UTC()
	}
	s.changedLocked(ev.Session, d, device, true)
	s.flushLocked()
}
