package firmwaresim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/loa-broadcast/loa/protocol"
)

// DefaultCacheBudget is a receiver's cache budget unless configured: a
// board's spare flash for a few dozen messages and a week's programmes.
const DefaultCacheBudget = 64 << 20

// cacheState is a receiver's local storage of items (contract: Cache):
// what a real receiver keeps in flash. With Config.CacheDir it lives in
// files there and survives a restart of the process; otherwise in memory.
type cacheState struct {
	mu      sync.Mutex
	version int64                  // the manifest last applied
	items   map[string]*cachedItem // by CacheItem.Ref
	order   []string               // refs in the manifest's order
	missing []string               // refs of that manifest not held, with why
	job     *cacheJob              // the manifest being applied
	loaded  bool                   // CacheDir read
	dir     string                 // Config.CacheDir
	budget  int64                  // bytes
}

// cacheFiles shares the bytes of verified files between the receivers of
// one process, by SHA-256: a fleet of thousands downloads the same
// messages, each its own copy over the wire, but holds one in memory.
var cacheFiles sync.Map // lowercase hex SHA-256 → []byte (never written to)

func shareFile(sha string, data []byte) []byte {
	v, _ := cacheFiles.LoadOrStore(strings.ToLower(sha), data)
	return v.([]byte)
}

// cachedItem is one item held: verified, its bytes at hand.
type cachedItem struct {
	item protocol.CacheItem
	data []byte
}

// cacheJob is a manifest being applied.
type cacheJob struct {
	cmdID   string
	version int64
	cancel  context.CancelFunc
	done    chan struct{}
}

func newCacheState(dir string, budget int64) *cacheState {
	if budget <= 0 {
		budget = DefaultCacheBudget
	}
	return &cacheState{items: map[string]*cachedItem{}, dir: dir, budget: budget}
}

// cacheIndex is the index file of a cache kept in a directory.
type cacheIndex struct {
	Version int64                `json:"version"`
	Items   []protocol.CacheItem `json:"items"` // held, in the manifest's order
}

const cacheIndexFile = "index.json"

// load reads a CacheDir's index and files once, dropping any file that no
// longer verifies (a flash error, a tampered card). c.mu is held.
func (c *cacheState) load(r *Receiver) {
	if c.loaded || c.dir == "" {
		c.loaded = true
		return
	}
	c.loaded = true
	b, err := os.ReadFile(filepath.Join(c.dir, cacheIndexFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cache index unreadable; starting empty", "err", err)
		}
		return
	}
	var idx cacheIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		r.log.Warn("cache index corrupt; starting empty", "err", err)
		return
	}
	c.version = idx.Version
	for _, it := range idx.Items {
		data, err := os.ReadFile(c.itemPath(it.SHA256))
		if err != nil || checkItem(r, it, data) != nil {
			c.missing = append(c.missing, it.Ref())
			continue
		}
		c.items[it.Ref()] = &cachedItem{item: it, data: shareFile(it.SHA256, data)}
		c.order = append(c.order, it.Ref())
	}
}

func (c *cacheState) itemPath(sha string) string {
	return filepath.Join(c.dir, strings.ToLower(sha)+".bin")
}

// save writes the index (and new items' files) to CacheDir. c.mu is held.
func (c *cacheState) save(r *Receiver, added []*cachedItem) {
	if c.dir == "" {
		return
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		r.log.Warn("cache dir", "err", err)
		return
	}
	for _, it := range added {
		if err := writeCacheFile(c.itemPath(it.item.SHA256), it.data); err != nil {
			r.log.Warn("cache write", "item", it.item.Ref(), "err", err)
		}
	}
	idx := cacheIndex{Version: c.version, Items: []protocol.CacheItem{}}
	keep := map[string]bool{}
	for _, ref := range c.order {
		it := c.items[ref]
		idx.Items = append(idx.Items, it.item)
		keep[strings.ToLower(it.item.SHA256)+".bin"] = true
	}
	b, _ := json.Marshal(idx)
	if err := writeCacheFile(filepath.Join(c.dir, cacheIndexFile), b); err != nil {
		r.log.Warn("cache index write", "err", err)
	}
	if ents, err := os.ReadDir(c.dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".bin") && !keep[e.Name()] {
				os.Remove(filepath.Join(c.dir, e.Name()))
			}
		}
	}
}

func writeCacheFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// bytesHeld is the storage used. c.mu is held.
func (c *cacheState) bytesHeld() int64 {
	var n int64
	for _, it := range c.items {
		n += int64(len(it.data))
	}
	return n
}

// holding is what the cache holds, as reported. c.mu is held.
func (c *cacheState) holding() protocol.CacheHolding {
	h := protocol.CacheHolding{Version: c.version, Missing: len(c.missing), Bytes: c.bytesHeld(), Budget: c.budget}
	h.Held = append([]string{}, c.order...)
	return h
}

// CacheHolding returns what the receiver's cache holds.
func (r *Receiver) CacheHolding() protocol.CacheHolding {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	r.cache.load(r)
	return r.cache.holding()
}

// cached returns the item held as kind:key, if any.
func (r *Receiver) cached(kind, key string) (protocol.CacheItem, []byte, bool) {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	r.cache.load(r)
	it, ok := r.cache.items[kind+":"+key]
	if !ok {
		return protocol.CacheItem{}, nil, false
	}
	return it.item, it.data, true
}

// checkItem verifies a file against its manifest entry: size, SHA-256 and
// the station key's signature.
func checkItem(r *Receiver, it protocol.CacheItem, data []byte) error {
	if int64(len(data)) != it.Size {
		return fwFail(protocol.FWBadChecksum, "%d bytes, want %d", len(data), it.Size)
	}
	if got := sha256hex(data); !strings.EqualFold(got, it.SHA256) {
		return fwFail(protocol.FWBadChecksum, "SHA-256 %s, want %s", got, strings.ToLower(it.SHA256))
	}
	if err := protocol.VerifyCacheItem(r.cfg.StationKey, it); err != nil {
		return fwFail(protocol.FWBadSignature, "%v", err)
	}
	return nil
}

// cacheCmd runs on the command loop: it refuses what it can at once, then
// applies the manifest in the background, superseding one in progress.
func (r *Receiver) cacheCmd(cmd protocol.Command) {
	args, err := protocol.DecodeCacheArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
		return
	}
	if r.cfg.StationKey == nil {
		r.ack(cmd.ID, protocol.AckFailed, protocol.CacheNoKey, "no station key: this receiver cannot verify cached items")
		return
	}
	c := r.cache
	c.mu.Lock()
	c.load(r)
	prev := c.job
	switch {
	case args.Version < c.version || (prev != nil && args.Version < prev.version):
		held := c.version
		c.mu.Unlock()
		r.ack(cmd.ID, protocol.AckFailed, protocol.CacheStale, fmt.Sprintf("version %d is older than %d", args.Version, held))
		return
	case args.Version == c.version && len(c.missing) == 0 && prev == nil:
		h := c.holding()
		c.mu.Unlock()
		r.ackResult(cmd.ID, protocol.AckDone, "", "already held", h)
		return
	}
	c.mu.Unlock()
	if prev != nil {
		prev.cancel()
		<-prev.done // it acked superseded
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &cacheJob{cmdID: cmd.ID, version: args.Version, cancel: cancel, done: make(chan struct{})}
	c.mu.Lock()
	c.job = job
	c.mu.Unlock()
	r.ack(cmd.ID, protocol.AckAccepted, "", "")
	r.wg.Add(1) // on the command loop, itself in wg: see firmwareCmd
	go func() {
		defer r.wg.Done()
		defer close(job.done)
		defer cancel()
		go func() {
			select {
			case <-r.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		r.applyCache(ctx, job, args)
	}()
}

// applyCache evicts what the manifest no longer lists, then fetches and
// verifies, in order, each item not held that fits in the budget.
func (r *Receiver) applyCache(ctx context.Context, job *cacheJob, args protocol.CacheArgs) {
	c := r.cache
	c.mu.Lock()
	want := map[string]protocol.CacheItem{}
	for _, it := range args.Items {
		want[it.Ref()] = it
	}
	for ref, held := range c.items {
		if it, ok := want[ref]; !ok || !strings.EqualFold(it.SHA256, held.item.SHA256) || it.Sig != held.item.Sig || it.Meta != held.item.Meta {
			delete(c.items, ref)
		}
	}
	used := c.bytesHeld()
	c.order = slices.DeleteFunc(c.order, func(ref string) bool { return c.items[ref] == nil })
	c.mu.Unlock()

	var missing, why []string
	var added []*cachedItem
	for _, it := range args.Items {
		ref := it.Ref()
		c.mu.Lock()
		_, have := c.items[ref]
		c.mu.Unlock()
		if have {
			continue
		}
		if used+it.Size > c.budget {
			missing = append(missing, ref)
			why = append(why, ref+": over the budget")
			continue
		}
		f, err := r.fetch(ctx, fetchReq{url: it.Location(args.BaseURL), size: it.Size, keep: true})
		if err == nil {
			err = checkItem(r, it, f.data)
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			r.log.Warn("cache item refused", "item", ref, "err", err)
			missing = append(missing, ref)
			why = append(why, ref+": "+err.Error())
			continue
		}
		ci := &cachedItem{item: it, data: shareFile(it.SHA256, f.data)}
		c.mu.Lock()
		c.items[ref] = ci
		c.mu.Unlock()
		added = append(added, ci)
		used += it.Size
	}

	c.mu.Lock()
	if c.job == job {
		c.job = nil
	}
	// The order is the manifest's, whatever was held before.
	c.order = c.order[:0]
	for _, it := range args.Items {
		if c.items[it.Ref()] != nil {
			c.order = append(c.order, it.Ref())
		}
	}
	if ctx.Err() != nil {
		c.save(r, added)
		c.mu.Unlock()
		select {
		case <-r.quit: // closing: nothing more goes out
		default:
			r.ack(job.cmdID, protocol.AckFailed, protocol.CacheSuperseded, "a newer manifest arrived")
		}
		return
	}
	c.version, c.missing = args.Version, missing
	c.save(r, added)
	h := c.holding()
	c.mu.Unlock()
	msg := ""
	if len(why) > 0 {
		msg = truncate(strings.Join(why, "; "), 1000)
	}
	r.log.Info("cache applied", "version", args.Version, "held", len(h.Held), "missing", len(missing), "bytes", h.Bytes)
	r.ackResult(job.cmdID, protocol.AckDone, "", msg, h)
	// The holding shows in the controller's fleet view at once, not at
	// the next telemetry period.
	if cl := r.mqttClient(); cl != nil && cl.IsConnectionOpen() {
		r.send(protocol.KindTele, r.Telemetry())
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
