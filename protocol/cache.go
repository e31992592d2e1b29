package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// OpCache is the cache command (contract v2, receivers that announce
// CapCache): the set of items the receiver is to hold in local storage.
const OpCache = "cache"

// Cache item kinds.
const (
	CacheKindStored    = "stored"    // a stored alert message; key is its code, 1–999
	CacheKindProgramme = "programme" // a programme's media for playing when the controller is unreachable
)

// Bounds of a cache manifest.
const (
	MaxCacheItems    = 256
	MaxCacheItemSize = 64 << 20
	MaxCacheMeta     = 512
	MinStoredCode    = 1
	MaxStoredCode    = 999
)

// CacheArgs are the args of a cache command: the whole set the receiver
// is to hold. Items not listed are evicted; listed items not held are
// downloaded (HTTPS, Basic auth, Range resume, as firmware), their size,
// SHA-256 and station-key signature checked. Items come in order of
// importance: a receiver whose budget cannot hold them all keeps the first
// that fit and reports the rest missing.
type CacheArgs struct {
	// Version increases whenever the set changes; a receiver ignores a
	// manifest older than the one it holds.
	Version int64       `json:"version"`
	Items   []CacheItem `json:"items"`
	// BaseURL, when set, is the URL of an item without its own: BaseURL
	// followed by the item's sha256 (keeps a long manifest within
	// MaxPayload).
	BaseURL string `json:"base_url,omitempty"`
}

// CacheItem is one item of a manifest.
type CacheItem struct {
	Kind   string `json:"kind"`          // CacheKindStored or CacheKindProgramme
	Key    string `json:"key"`           // unique per kind: a stored message's code ("12"), a programme's id
	SHA256 string `json:"sha256"`        // hex SHA-256 of the file
	Size   int64  `json:"size"`          // bytes
	URL    string `json:"url,omitempty"` // absent: base_url + sha256
	Sig    string `json:"sig"`           // base64 ed25519 signature by the station key of CacheSignedMessage
	// Meta is kind-specific data the signature covers too (programmes:
	// when to play); opaque to the cache itself.
	Meta string `json:"meta,omitempty"`
}

// Ref is the item's name in reports: kind ":" key.
func (it CacheItem) Ref() string { return it.Kind + ":" + it.Key }

// Location is where the item is downloaded from.
func (it CacheItem) Location(base string) string {
	if it.URL != "" {
		return it.URL
	}
	return base + strings.ToLower(it.SHA256)
}

// CacheHolding is what a receiver holds: the Result of a cache command's
// final ack, and tele.cache.
type CacheHolding struct {
	Version int64    `json:"version"`        // the manifest last applied, 0: none
	Held    []string `json:"held,omitempty"` // Ref of every item held and verified
	Missing int      `json:"missing"`        // items of that manifest not held (download failing, over budget)
	Bytes   int64    `json:"bytes"`          // storage used
	Budget  int64    `json:"budget"`         // storage budget, bytes
}

// Holds reports whether the holding lists ref (CacheItem.Ref).
func (h CacheHolding) Holds(ref string) bool {
	for _, x := range h.Held {
		if x == ref {
			return true
		}
	}
	return false
}

// Cache failure codes (Ack.Code), besides invalid.
const (
	CacheNoKey      = "no_station_key" // the receiver has no station key and cannot verify any item
	CacheSuperseded = "superseded"     // a newer manifest arrived before this one was applied
	CacheStale      = "stale"          // the manifest is older than the one held
)

// StoredKey is the CacheItem key of stored message code.
func StoredKey(code int) string { return strconv.Itoa(code) }

// CacheSignedMessage is what an item's signature covers: a domain label
// (so no other signed kind can be replayed as a cache item), then kind,
// key, hash, size and meta, each ended by 0x00. Binding the key stops a
// signed "flash flood" message from being relabelled as "forest fire".
func CacheSignedMessage(it CacheItem) []byte {
	return []byte("loa-cache-v1\x00" + it.Kind + "\x00" + it.Key + "\x00" + strings.ToLower(it.SHA256) + "\x00" +
		strconv.FormatInt(it.Size, 10) + "\x00" + it.Meta)
}

// SignCacheItem returns the base64 signature of it by the station key.
func SignCacheItem(key ed25519.PrivateKey, it CacheItem) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, CacheSignedMessage(it)))
}

// VerifyCacheItem checks it.Sig against the station's public key.
func VerifyCacheItem(pub ed25519.PublicKey, it CacheItem) error {
	raw, err := base64.StdEncoding.DecodeString(it.Sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return errors.New("cache: sig is not a base64 ed25519 signature")
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, CacheSignedMessage(it), raw) {
		return fmt.Errorf("cache: %s: signature does not verify", it.Ref())
	}
	return nil
}

func checkURL(kind, u string) error {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") || len(u) > 2048 {
		return fmt.Errorf("%s: url must be http:// or https://, at most 2048 bytes", kind)
	}
	return nil
}

// DecodeCacheArgs parses and checks cache args; unknown fields are
// refused.
func DecodeCacheArgs(b []byte) (CacheArgs, error) {
	var a CacheArgs
	if err := decodeStrict("cache", b, &a); err != nil {
		return CacheArgs{}, err
	}
	if err := requireFields("cache", b, &a); err != nil {
		return CacheArgs{}, err
	}
	if a.Version <= 0 {
		return CacheArgs{}, fmt.Errorf("cache: version %d must be positive", a.Version)
	}
	if len(a.Items) > MaxCacheItems {
		return CacheArgs{}, fmt.Errorf("cache: %d items, at most %d", len(a.Items), MaxCacheItems)
	}
	if a.BaseURL != "" {
		if err := checkURL("cache: base_url", a.BaseURL); err != nil {
			return CacheArgs{}, err
		}
	}
	seen := make(map[string]bool, len(a.Items))
	for i, it := range a.Items {
		if err := checkCacheItem(it, a.BaseURL != ""); err != nil {
			return CacheArgs{}, fmt.Errorf("cache: items[%d]: %w", i, err)
		}
		if seen[it.Ref()] {
			return CacheArgs{}, fmt.Errorf("cache: items[%d]: %s listed twice", i, it.Ref())
		}
		seen[it.Ref()] = true
	}
	if a.Items == nil {
		a.Items = []CacheItem{}
	}
	return a, nil
}

func checkCacheItem(it CacheItem, haveBase bool) error {
	switch it.Kind {
	case CacheKindStored:
		if n, err := strconv.Atoi(it.Key); err != nil || n < MinStoredCode || n > MaxStoredCode || StoredKey(n) != it.Key {
			return fmt.Errorf("stored key %q: want a code %d–%d", truncateText(it.Key, 16), MinStoredCode, MaxStoredCode)
		}
	case CacheKindProgramme:
		if it.Key == "" || len(it.Key) > 64 || strings.ContainsAny(it.Key, ":/\\\x00") {
			return errors.New("programme key must be 1–64 bytes without : / \\")
		}
	default:
		return fmt.Errorf("unknown kind %q", truncateText(it.Kind, 32))
	}
	if h, err := hex.DecodeString(it.SHA256); err != nil || len(h) != 32 {
		return errors.New("sha256 must be 64 hex characters")
	}
	if it.Size <= 0 || it.Size > MaxCacheItemSize {
		return fmt.Errorf("size %d outside 1..%d", it.Size, MaxCacheItemSize)
	}
	switch {
	case it.URL != "":
		if err := checkURL("url", it.URL); err != nil {
			return err
		}
	case !haveBase:
		return errors.New("url is required without base_url")
	}
	if raw, err := base64.StdEncoding.DecodeString(it.Sig); err != nil || len(raw) != ed25519.SignatureSize {
		return errors.New("sig must be a base64 ed25519 signature")
	}
	if len(it.Meta) > MaxCacheMeta {
		return fmt.Errorf("meta of %d bytes, at most %d", len(it.Meta), MaxCacheMeta)
	}
	return nil
}

// DecodeCacheHolding parses and checks a holding (ack result, tele.cache).
func DecodeCacheHolding(b []byte) (CacheHolding, error) {
	var h CacheHolding
	if err := decodeContract("cache holding", b, &h); err != nil {
		return CacheHolding{}, err
	}
	if err := h.check(); err != nil {
		return CacheHolding{}, err
	}
	return h, nil
}

func (h CacheHolding) check() error {
	switch {
	case h.Version < 0 || h.Missing < 0 || h.Bytes < 0 || h.Budget < 0:
		return errors.New("cache holding: negative version, missing, bytes or budget")
	case len(h.Held) > MaxCacheItems:
		return fmt.Errorf("cache holding: %d items held, at most %d", len(h.Held), MaxCacheItems)
	}
	for _, ref := range h.Held {
		if ref == "" || len(ref) > 80 {
			return errors.New("cache holding: each held ref must be 1–80 bytes")
		}
	}
	return nil
}
