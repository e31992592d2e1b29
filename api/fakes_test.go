package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// fakeMedia is an in-memory MediaService. It reads the whole upload (so
// the server's size limit is exercised) but keeps only its hash.
type fakeMedia struct {
	mu     sync.Mutex
	items  map[string]*loa.Media
	fail   error // returned by MediaList when set
	refuse error // returned by ImportMedia, before reading, when set
}

func (f *fakeMedia) ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*loa.Media, error) {
	if f.refuse != nil {
		return nil, f.refuse
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	if n == 0 {
		return nil, loa.Errorf(loa.EINVALID, "file: empty")
	}
	if name == "not-audio.txt" {
		return nil, loa.Errorf(loa.EUNSUPPORTED, "file: not a known audio format")
	}
	sum := hex.EncodeToString(h.Sum(nil))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items == nil {
		f.items = map[string]*loa.Media{}
	}
	m := &loa.Media{ID: fmt.Sprintf("m-%d", len(f.items)+1), Name: name, Hash: sum, Size: n,
		Duration: time.Second, Frames: 50, Source: "wav", CreatedBy: createdBy}
	f.items[m.ID] = m
	return m, nil
}

func (f *fakeMedia) Media(ctx context.Context, id string) (*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.items[id]; ok {
		return m, nil
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "media %q not found", id)
}

func (f *fakeMedia) MediaList(ctx context.Context) ([]*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var out []*loa.Media
	for _, m := range f.items {
		out = append(out, m)
	}
	return out, nil
}

func (f *fakeMedia) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.items)
}

// fakeSessions is an in-memory SessionService: it checks the media exists
// and takes the named devices as the resolved ones.
type fakeSessions struct {
	media *fakeMedia
	mu    sync.Mutex
	all   map[string]*loa.Session
	dests []netip.AddrPort
	fors  []time.Duration
	plain []bool
	moved []loa.ReceiverDelivery
}

func (f *fakeSessions) StartSession(ctx context.Context, s *loa.Session) error {
	if _, err := f.media.Media(ctx, s.MediaID); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all == nil {
		f.all = map[string]*loa.Session{}
	}
	s.ID = fmt.Sprintf("s-%d", len(f.all)+1)
	s.SSRC = uint32(len(f.all) + 1000)
	s.State = loa.SessionPlaying
	s.Devices = slices.Clone(s.Targets.Devices)
	s.StartedAt = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	c := *s
	f.all[s.ID] = &c
	return nil
}

func (f *fakeSessions) StopSession(ctx context.Context, id, by, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	if s.State != loa.SessionPlaying {
		return loa.Errorf(loa.ECONFLICT, "session %q is %s", id, s.State)
	}
	s.State, s.Reason, s.StoppedBy = loa.SessionStopped, reason, by
	return nil
}

// SessionDelivery reports every resolved device finished, the last one
// failed, and the lines of f.moved (receivers moved since, out of scope).
func (f *fakeSessions) SessionDelivery(ctx context.Context, id string) ([]loa.ReceiverDelivery, error) {
	s, err := f.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []loa.ReceiverDelivery
	for i, d := range s.Devices {
		l := loa.ReceiverDelivery{Device: d, State: loa.DeliveryFinished, Evidence: loa.EvidenceEvent, QueuedAt: s.StartedAt, Played: 50}
		if i == len(s.Devices)-1 {
			l.State, l.Reason, l.Evidence, l.Played = loa.DeliveryFailed, loa.ReasonNoStream, "", 0
		}
		out = append(out, l)
	}
	f.mu.Lock()
	out = append(out, f.moved...)
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b loa.ReceiverDelivery) int { return strings.Compare(a.Device, b.Device) })
	return out, nil
}

func (f *fakeSessions) Session(ctx context.Context, id string) (*loa.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	c := *s
	return &c, nil
}

func (f *fakeSessions) Sessions(ctx context.Context) ([]*loa.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*loa.Session
	for _, s := range f.all {
		c := *s
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeSessions) SessionSDP(ctx context.Context, id string, req loa.ListenerRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return "", loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	dest := req.Dest
	f.dests = append(f.dests, dest)
	f.fors = append(f.fors, req.For)
	f.plain = append(f.plain, req.Plain)
	return fmt.Sprintf("v=0\r\no=- %d 0 IN IP4 127.0.0.1\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
		s.SSRC, s.ID, dest.Addr(), dest.Port()), nil
}

func (f *fakeSessions) RemoveListener(ctx context.Context, id string, dest netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.dests, dest)
	if i < 0 {
		return loa.Errorf(loa.ENOTFOUND, "session %s has no listener %s", id, dest)
	}
	f.dests = slices.Delete(f.dests, i, i+1)
	return nil
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// fakePresence reports a fixed state per device.
type fakePresence map[string]loa.DeviceState

func (p fakePresence) DeviceState(id string) (loa.DeviceState, bool) {
	st, ok := p[id]
	return st, ok
}

var errDiskOnFire = errors.New("read /var/lib/loa/media: disk on fire")

// testNow is the server's clock in tests: Wednesday 25 November 2026,
// 10:00 in Hà Nội.
var testNow = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// hcm is the station's zone in tests.
var hcm = time.FixedZone("ICT", 7*60*60)

// schedules is the real schedule service on the test's store, recording
// the window of the last Agenda call so tests see how the API read ?day=,
// ?week= and ?from=&to=.
type schedules struct {
	*realSchedules
	db *store.DB

	mu        sync.Mutex
	agendaArg [2]time.Time
}

func (s *schedules) Agenda(ctx context.Context, from, to time.Time) ([]loa.Occurrence, error) {
	s.mu.Lock()
	s.agendaArg = [2]time.Time{from, to}
	s.mu.Unlock()
	return s.realSchedules.Agenda(ctx, from, to)
}

func (s *schedules) lastAgenda() (from, to time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agendaArg[0], s.agendaArg[1]
}

// realSchedules names the embedded service apart from its Schedules method.
type realSchedules = station.Schedules

// count is how many schedules the store holds.
func (s *schedules) count() int {
	all, err := s.db.Schedules(context.Background())
	if err != nil {
		panic(err)
	}
	return len(all)
}

// fakePlayLog answers its entries whatever the filter, so the server's
// own scope filtering shows, and remembers the last filter.
type fakePlayLog struct {
	mu      sync.Mutex
	entries []loa.PlayLogEntry
	filter  loa.PlayLogFilter
}

func (f *fakePlayLog) PlayLog(ctx context.Context, filter loa.PlayLogFilter) ([]loa.PlayLogEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = filter
	out := make([]loa.PlayLogEntry, len(f.entries))
	for i, e := range f.entries {
		e.Devices = slices.Clone(e.Devices)
		out[i] = e
	}
	return out, nil
}

func (f *fakePlayLog) lastFilter() loa.PlayLogFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filter
}
