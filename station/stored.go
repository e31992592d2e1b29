package station

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// StoredCommander sends one command to a receiver and returns its final
// ack (the fleet).
type StoredCommander interface {
	SendOp(ctx context.Context, deviceID, op string, args any) (protocol.Ack, error)
}

// Stored implements loa.StoredMessageService: the library of stored alert
// messages, and the receivers' copies of it. Every receiver that
// announces the cache is sent, as a signed cache manifest, the messages
// of its area and the areas above it: when the library changes, and when
// it comes online holding an older version. Receivers fetch the files
// from /cache/{sha256} (OpenCacheItem). The final ack of each manifest
// says what the receiver holds (Holds), which alerts use to send it
// play_stored instead of a stream.
type Stored struct {
	db     *store.DB
	fleet  Fleet
	cmd    StoredCommander
	key    ed25519.PrivateKey // the station key, signing every item
	logger *slog.Logger

	mu      sync.Mutex
	baseURL string             // receivers fetch baseURL + "/cache/" + sha256
	holding map[string]heldSet // by device: the final ack of its last manifest
	sending map[string]bool    // devices with a manifest in flight
	again   map[string]bool    // devices to send again once it lands
	kick    chan struct{}
	wg      sync.WaitGroup // manifests in flight
	sources []CacheSource  // more items of each receiver's set, after the stored messages
}

// CacheSource adds items of another kind (programmes) to receivers'
// cache sets, through the same manifests, downloads and holdings. Its
// items come unsigned: Stored signs them. A source calls Stored.Changed
// when its items change.
type CacheSource interface {
	// CacheItems lists device's items, in order of importance; URL empty
	// (served from /cache/{sha256}), Sig empty.
	CacheItems(ctx context.Context, deviceID string) ([]protocol.CacheItem, error)
	// CacheFile reports whether sha256 is one of its files (a media blob
	// /cache/ may serve).
	CacheFile(ctx context.Context, sha256 string) (bool, error)
}

// AddSource adds a source of items; call it before Run.
func (s *Stored) AddSource(src CacheSource) {
	s.mu.Lock()
	s.sources = append(s.sources, src)
	s.mu.Unlock()
}

// Changed tells the service a source's items changed: the sets get a new
// version and are sent again.
func (s *Stored) Changed(ctx context.Context) error {
	if _, err := s.db.BumpStoredVersion(ctx); err != nil {
		return err
	}
	s.poke()
	return nil
}

func (s *Stored) sourceList() []CacheSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sources)
}

var _ loa.StoredMessageService = (*Stored)(nil)

// storedSenders bounds the manifests in flight at once.
const storedSenders = 16

// storedResync is how often receivers behind the library (a manifest
// that timed out, a receiver that lost its storage) are sent it again.
const storedResync = time.Minute

// heldSet is what a receiver's last manifest ack said it holds, in which
// boot.
type heldSet struct {
	protocol.CacheHolding
	boot uint64
}

// NewStored returns the service; baseURL may be empty until Serving.
func NewStored(db *store.DB, fleet Fleet, cmd StoredCommander, key ed25519.PrivateKey, baseURL string, logger *slog.Logger) *Stored {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Stored{db: db, fleet: fleet, cmd: cmd, key: key, logger: logger, baseURL: strings.TrimSuffix(baseURL, "/"),
		holding: map[string]heldSet{}, sending: map[string]bool{}, again: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// Serving tells the service the API's URL, the default base of the items'
// URLs.
func (s *Stored) Serving(apiURL string) {
	s.mu.Lock()
	if s.baseURL == "" {
		s.baseURL = strings.TrimSuffix(apiURL, "/")
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Stored) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// StoredMessages returns the whole library by code.
func (s *Stored) StoredMessages(ctx context.Context) ([]*loa.StoredMessage, error) {
	list, _, err := s.db.StoredMessages(ctx)
	return list, err
}

// Version is the library's version: the version of every manifest built
// from it.
func (s *Stored) Version(ctx context.Context) (int64, error) {
	_, v, err := s.db.StoredMessages(ctx)
	return v, err
}

// StoredMessage returns the message of code, or ENOTFOUND.
func (s *Stored) StoredMessage(ctx context.Context, code int) (*loa.StoredMessage, error) {
	return s.db.StoredMessage(ctx, code)
}

// PutStoredMessage stores m and sends every receiver its new set.
func (s *Stored) PutStoredMessage(ctx context.Context, m *loa.StoredMessage) error {
	m.UpdatedAt = time.Now().UTC()
	v, err := s.db.PutStoredMessage(ctx, m)
	if err != nil {
		return err
	}
	s.logger.Info("stored message put", "code", m.Code, "media", m.MediaID, "area", m.AreaID, "version", v)
	s.poke()
	return nil
}

// DeleteStoredMessage removes code and sends every receiver its new set.
func (s *Stored) DeleteStoredMessage(ctx context.Context, code int) error {
	v, err := s.db.DeleteStoredMessage(ctx, code)
	if err != nil {
		return err
	}
	s.logger.Info("stored message deleted", "code", code, "version", v)
	s.poke()
	return nil
}

// OpenCacheItem opens a library file by its SHA-256; only files of the
// library are served, never any other media.
func (s *Stored) OpenCacheItem(ctx context.Context, sha string) (io.ReadSeekCloser, error) {
	list, _, err := s.db.StoredMessages(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range list {
		if strings.EqualFold(m.SHA256, sha) {
			return s.db.OpenBlob(store.MediaBlob, strings.ToLower(sha))
		}
	}
	for _, src := range s.sourceList() {
		if ok, err := src.CacheFile(ctx, strings.ToLower(sha)); err != nil {
			return nil, err
		} else if ok {
			return s.db.OpenBlob(store.MediaBlob, strings.ToLower(sha))
		}
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "no cache item %q", truncate(sha, 64))
}

// Manifest is device's set: the messages of its area and of the areas
// above it, signed, under the library's version.
func (s *Stored) Manifest(ctx context.Context, deviceID string) (protocol.CacheArgs, error) {
	list, version, err := s.db.StoredMessages(ctx)
	if err != nil {
		return protocol.CacheArgs{}, err
	}
	dev, err := s.db.Device(ctx, deviceID)
	if err != nil {
		return protocol.CacheArgs{}, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return protocol.CacheArgs{}, err
	}
	tree := loa.NewAreaTree(areas)
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	args := protocol.CacheArgs{Version: max(version, 1), Items: []protocol.CacheItem{}, BaseURL: base + "/cache/"}
	for _, m := range list {
		if !tree.Within(dev.AreaID, m.AreaID) {
			continue
		}
		it := protocol.CacheItem{Kind: protocol.CacheKindStored, Key: protocol.StoredKey(m.Code), SHA256: strings.ToLower(m.SHA256), Size: m.Size}
		it.Sig = protocol.SignCacheItem(s.key, it)
		args.Items = append(args.Items, it)
	}
	for _, src := range s.sourceList() {
		items, err := src.CacheItems(ctx, deviceID)
		if err != nil {
			return protocol.CacheArgs{}, err
		}
		for _, it := range items {
			it.SHA256, it.Sig = strings.ToLower(it.SHA256), ""
			it.Sig = protocol.SignCacheItem(s.key, it)
			args.Items = append(args.Items, it)
		}
	}
	return args, nil
}

// Holds reports whether device holds stored message code of the library
// at version, by the final ack of its last manifest or, failing that, its
// telemetry.
func (s *Stored) Holds(deviceID string, code int, version int64) bool {
	ref := protocol.CacheKindStored + ":" + protocol.StoredKey(code)
	s.mu.Lock()
	h, ok := s.holding[deviceID]
	s.mu.Unlock()
	if ok && h.Version == version {
		if st, known := s.fleet.DeviceState(deviceID); !known || st.Boot == h.boot {
			return h.Holds(ref)
		}
	}
	st, ok := s.fleet.DeviceState(deviceID)
	if !ok || !st.HasCap(protocol.CapCache) || st.Telemetry == nil || st.Telemetry.Cache == nil {
		return false
	}
	c := st.Telemetry.Cache
	return c.Version == version && protocol.CacheHolding{Held: c.Held}.Holds(ref)
}

// Run sends manifests until ctx ends: to every receiver with the cache
// when the library changes, and to one that comes online holding an
// older version.
func (s *Stored) Run(ctx context.Context) {
	defer s.wg.Wait() // after the presence subscription ends, below
	defer s.fleet.OnPresence(func(st loa.DeviceState) {
		if st, ok := s.fleet.DeviceState(st.ID); ok && st.Online && st.HasCap(protocol.CapCache) {
			s.maybeSend(ctx, st.ID, false)
		}
	})()
	t := time.NewTicker(storedResync)
	defer t.Stop()
	for {
		force := true
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
			force = false
		}
		ids, err := s.db.Devices(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("stored messages: devices not listed", "err", err)
			}
			continue
		}
		for _, d := range ids {
			if st, ok := s.fleet.DeviceState(d.ID); ok && st.Online && st.HasCap(protocol.CapCache) {
				s.maybeSend(ctx, d.ID, force)
			}
		}
	}
}

// maybeSend sends device its manifest unless it holds the library's
// version whole already, by its last ack in this boot or, failing that,
// its telemetry (force, for a library change: send anyway).
func (s *Stored) maybeSend(ctx context.Context, id string, force bool) {
	version, err := s.Version(ctx)
	if err != nil || version == 0 {
		return // nothing stored yet: nothing to send
	}
	st, _ := s.fleet.DeviceState(id)
	s.mu.Lock()
	h, known := s.holding[id]
	upToDate := known && h.boot == st.Boot && h.Version >= version && h.Missing == 0
	if !known && st.Telemetry != nil && st.Telemetry.Cache != nil {
		c := st.Telemetry.Cache
		upToDate = c.Version >= version && c.Missing == 0
	}
	if !force && upToDate {
		s.mu.Unlock()
		return
	}
	if s.baseURL == "" {
		s.mu.Unlock()
		return // not serving yet: Serving kicks
	}
	if s.sending[id] {
		s.again[id] = true
		s.mu.Unlock()
		return
	}
	if len(s.sending) >= storedSenders {
		s.again[id] = true // sent when one in flight lands
		s.mu.Unlock()
		return
	}
	s.sending[id] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.send(ctx, id)
	}()
}

// send sends one manifest and records the holding its final ack reports;
// then the next device waiting, if any.
func (s *Stored) send(ctx context.Context, id string) {
	for {
		args, err := s.Manifest(ctx, id)
		if err == nil {
			var ack protocol.Ack
			ack, err = s.cmd.SendOp(ctx, id, protocol.OpCache, args)
			if h, herr := protocol.DecodeCacheHolding(ack.Result); herr == nil && len(ack.Result) > 0 {
				st, _ := s.fleet.DeviceState(id)
				s.mu.Lock()
				s.holding[id] = heldSet{h, st.Boot}
				s.mu.Unlock()
				s.logger.Info("cache manifest applied", "device", id, "version", h.Version, "held", len(h.Held), "missing", h.Missing)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("cache manifest not applied", "device", id, "err", err)
		}
		s.mu.Lock()
		delete(s.sending, id)
		next := ""
		if s.again[id] {
			next = id
		} else {
			for d := range s.again {
				next = d
				break
			}
		}
		if next == "" || ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		delete(s.again, next)
		s.sending[next] = true
		s.mu.Unlock()
		id = next
	}
}
