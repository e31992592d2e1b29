package firmwaresim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// oggOpus wraps 20 ms Opus frames in a minimal Ogg Opus file (one packet
// a page; CRCs left zero: the receiver checks the file's SHA-256).
func oggOpus(frames [][]byte) []byte {
	var out []byte
	page := func(seq uint32, granule uint64, flags byte, pkt []byte) {
		h := make([]byte, 27)
		copy(h, "OggS")
		h[5] = flags
		binary.LittleEndian.PutUint64(h[6:], granule)
		binary.LittleEndian.PutUint32(h[14:], 0x10a)
		binary.LittleEndian.PutUint32(h[18:], seq)
		var lace []byte
		n := len(pkt)
		for ; n >= 255; n -= 255 {
			lace = append(lace, 255)
		}
		lace = append(lace, byte(n))
		h[26] = byte(len(lace))
		out = append(append(append(out, h...), lace...), pkt...)
	}
	head := append([]byte("OpusHead"), 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0)
	page(0, 0, 2, head)
	page(1, 0, 0, append([]byte("OpusTags"), 0, 0, 0, 0, 0, 0, 0, 0))
	for i, f := range frames {
		page(uint32(i+2), uint64(i+1)*protocol.FrameSamples, 0, f)
	}
	return out
}

// cacheFixture is a controller's side of the cache: a file server, a
// station key, a broker and a recorder.
type cacheFixture struct {
	broker string
	rec    *recorder
	srv    *imageServer
	pub    ed25519.PublicKey
	priv   ed25519.PrivateKey
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	broker := loatest.StartBroker(t, "").URL()
	pub, priv := newKey(t)
	return &cacheFixture{broker: broker, rec: newRecorder(t, broker, "ctl"), srv: newImageServer(t), pub: pub, priv: priv}
}

// item serves file as stored message code and returns its signed entry.
func (f *cacheFixture) item(code int, file []byte) protocol.CacheItem {
	sum := sha256.Sum256(file)
	h := hex.EncodeToString(sum[:])
	it := protocol.CacheItem{Kind: protocol.CacheKindStored, Key: protocol.StoredKey(code), SHA256: h, Size: int64(len(file)),
		URL: f.srv.put("/cache/"+h, file)}
	it.Sig = protocol.SignCacheItem(f.priv, it)
	return it
}

func (f *cacheFixture) receiver(t *testing.T, cfg Config) *Receiver {
	t.Helper()
	cfg.Password, cfg.Broker, cfg.TeleInterval = otaPassword, f.broker, time.Hour
	if cfg.StationKey == nil {
		cfg.StationKey = f.pub
	}
	r := startReceiver(t, cfg)
	f.rec.wait(t, "online", statusIs(cfg.ID, true, r.Boot()))
	return r
}

// apply sends a manifest and returns its final ack.
func (f *cacheFixture) apply(t *testing.T, dev string, version int64, items ...protocol.CacheItem) protocol.Ack {
	t.Helper()
	id := f.rec.send(t, dev, protocol.OpCache, protocol.CacheArgs{Version: version, Items: append([]protocol.CacheItem{}, items...)}, time.Now().Add(time.Minute))
	return f.rec.finalAck(t, dev, id)
}

func holdingOf(t *testing.T, a protocol.Ack) protocol.CacheHolding {
	t.Helper()
	h, err := protocol.DecodeCacheHolding(a.Result)
	if err != nil {
		t.Fatalf("ack %+v: result %v", a, err)
	}
	return h
}

// A manifest is applied and reported in its ack and in telemetry; the
// same manifest again is done at once.
func TestCacheApplied(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	r := f.receiver(t, Config{ID: "rx1"})
	if st := r.status(true); !st.Has(protocol.CapCache) || st.CacheBudget != DefaultCacheBudget {
		t.Fatalf("status %+v: want cache announced with its budget", st)
	}
	const n = 25
	tone := oggOpus(toneFrames(t, n))
	other := oggOpus(sineFrames(t, 10, 440))
	a := f.apply(t, "rx1", 1, f.item(12, tone), f.item(7, other))
	h := holdingOf(t, a)
	if a.State != protocol.AckDone || h.Version != 1 || strings.Join(h.Held, ",") != "stored:12,stored:7" || h.Missing != 0 ||
		h.Bytes != int64(len(tone)+len(other)) || h.Budget != DefaultCacheBudget {
		t.Fatalf("ack %+v, holding %+v", a, h)
	}
	if tl := r.Telemetry(); tl.Cache == nil || tl.Cache.Version != 1 || len(tl.Cache.Held) != 2 {
		t.Errorf("tele.cache %+v", tl.Cache)
	}
	// The same manifest again is done at once.
	if a := f.apply(t, "rx1", 1, f.item(12, tone), f.item(7, other)); a.State != protocol.AckDone || a.Msg != "already held" {
		t.Errorf("same manifest again: %+v", a)
	}

}

// A dropped connection resumes with Range; a wrong file, a forged or
// relabelled signature are not kept and count as missing; the good
// items are held.
func TestCacheResumeAndRefusals(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	const cut = 3000
	r := f.receiver(t, Config{ID: "rx1", Impair: Impairment{CutDownloadAt: cut}})
	good := oggOpus(toneFrames(t, 50))
	if len(good) <= cut {
		t.Fatalf("item of %d bytes is too short to cut at %d", len(good), cut)
	}
	ok := f.item(1, good)

	badHash := f.item(2, oggOpus(toneFrames(t, 5)))
	f.srv.put("/cache/"+badHash.SHA256, oggOpus(toneFrames(t, 6))) // the server now holds other bytes

	_, otherKey := newKey(t)
	forged := f.item(3, oggOpus(sineFrames(t, 5, 300)))
	forged.Sig = protocol.SignCacheItem(otherKey, forged)

	relabelled := f.item(4, oggOpus(sineFrames(t, 5, 500)))
	relabelled.Key = "5" // signed as 4

	a := f.apply(t, "rx1", 1, ok, badHash, forged, relabelled)
	h := holdingOf(t, a)
	if a.State != protocol.AckDone || strings.Join(h.Held, ",") != "stored:1" || h.Missing != 3 {
		t.Fatalf("ack %+v, holding %+v", a, h)
	}
	for _, want := range []string{"stored:2: bad_checksum", "stored:3: bad_signature", "stored:5: bad_signature"} {
		if !strings.Contains(a.Msg, want) {
			t.Errorf("ack msg %q lacks %q", a.Msg, want)
		}
	}
	if got := f.srv.rangeRequests(); len(got) == 0 || got[0] != "bytes=3000-" {
		t.Errorf("Range requests %q, want a resume at bytes=3000-", got)
	}
	if _, data, held := r.cached(protocol.CacheKindStored, "1"); string(data) != string(good) || !held {
		t.Error("the resumed item is not held whole")
	}
}

// A receiver without a station key refuses every manifest; one without
// the cache refuses the ops as unsupported.
func TestCacheRefusedWhole(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	nokey := startReceiver(t, Config{ID: "rx1", Password: otaPassword, Broker: f.broker, TeleInterval: time.Hour})
	f.rec.wait(t, "online", statusIs("rx1", true, nokey.Boot()))
	if a := f.apply(t, "rx1", 1, f.item(1, oggOpus(toneFrames(t, 5)))); a.State != protocol.AckFailed || a.Code != protocol.CacheNoKey {
		t.Errorf("manifest without a station key: %+v", a)
	}
	none := f.receiver(t, Config{ID: "rx2", NoCache: true})
	if st := none.status(true); st.Has(protocol.CapCache) || st.CacheBudget != 0 {
		t.Errorf("NoCache status %+v", st)
	}
	if a := f.apply(t, "rx2", 1); a.State != protocol.AckFailed || a.Code != CodeUnsupported {
		t.Errorf("cache to a receiver without it: %+v", a)
	}
	if none.Telemetry().Cache != nil {
		t.Error("tele.cache from a receiver without a cache")
	}
	if a := f.apply(t, "rx1", 1, protocol.CacheItem{}); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("invalid manifest: %+v", a)
	}
}

// A new manifest evicts what it no longer lists and keeps what it does
// (no second download); what does not fit in the budget is missing; an
// older manifest is refused stale.
func TestCacheEvictionAndBudget(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	a1 := oggOpus(toneFrames(t, 20))
	b1 := oggOpus(sineFrames(t, 20, 440))
	c1 := oggOpus(sineFrames(t, 40, 700))
	budget := int64(len(a1) + len(b1) + len(c1)/2)
	f.receiver(t, Config{ID: "rx1", CacheBudget: budget})
	A, B, C := f.item(1, a1), f.item(2, b1), f.item(3, c1)
	if h := holdingOf(t, f.apply(t, "rx1", 1, A, B)); strings.Join(h.Held, ",") != "stored:1,stored:2" {
		t.Fatalf("v1 holding %+v", h)
	}
	before := len(f.srv.rangeRequests())
	f.srv.mu.Lock()
	requests := len(f.srv.ranges)
	f.srv.mu.Unlock()
	a := f.apply(t, "rx1", 2, B, C, A)
	h := holdingOf(t, a)
	// A and B stay held (both listed): C, listed before A, no longer fits.
	if strings.Join(h.Held, ",") != "stored:2,stored:1" || h.Missing != 1 || !strings.Contains(a.Msg, "stored:3: over the budget") || h.Bytes > budget {
		t.Fatalf("v2 ack %+v holding %+v", a, h)
	}
	f.srv.mu.Lock()
	fetched := len(f.srv.ranges) - requests
	f.srv.mu.Unlock()
	if fetched != 0 || len(f.srv.rangeRequests()) != before {
		t.Errorf("%d downloads for items already held", fetched)
	}
	// Evicting A makes room for C.
	h = holdingOf(t, f.apply(t, "rx1", 3, B, C))
	if strings.Join(h.Held, ",") != "stored:2,stored:3" || h.Missing != 0 || h.Bytes != int64(len(b1)+len(c1)) {
		t.Fatalf("v3 holding %+v", h)
	}
	if a := f.apply(t, "rx1", 2, A); a.State != protocol.AckFailed || a.Code != protocol.CacheStale {
		t.Errorf("older manifest: %+v", a)
	}

}

// With a CacheDir the cache survives the process: a new receiver on the
// same directory holds the items and version.
func TestCacheDirPersists(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	dir := t.TempDir()
	r := f.receiver(t, Config{ID: "rx1", CacheDir: dir})
	item := f.item(4, oggOpus(toneFrames(t, 10)))
	if h := holdingOf(t, f.apply(t, "rx1", 5, item)); len(h.Held) != 1 {
		t.Fatalf("holding %+v", h)
	}
	r.Close()
	r2 := f.receiver(t, Config{ID: "rx2", CacheDir: dir})
	if h := r2.CacheHolding(); h.Version != 5 || strings.Join(h.Held, ",") != "stored:4" {
		t.Fatalf("holding after restart %+v", h)
	}
}
