package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func init() {
	decoders["cache"] = func(b []byte) (any, error) { return DecodeCacheArgs(b) }
	decoders["cacheholding"] = func(b []byte) (any, error) { return DecodeCacheHolding(b) }
	decoders["play_stored"] = func(b []byte) (any, error) { return DecodePlayStoredArgs(b) }
	contractTypes["cache"] = CacheArgs{}
	contractTypes["cacheitem"] = CacheItem{}
	contractTypes["cacheholding"] = CacheHolding{}
	contractTypes["play_stored"] = PlayStoredArgs{}
}

// testStationKey is the key of the golden vectors in CONTRACT.md.
var testStationKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// The signatures in the contract's example are the station key's over
// CacheSignedMessage: a receiver built to the page verifies them, and
// refuses the same item relabelled, resized or signed by another key.
func TestCacheSignatureGoldenVectors(t *testing.T) {
	if got := EncodeStationPublicKey(testStationKey.Public().(ed25519.PublicKey)); got != "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=" {
		t.Fatalf("test key's public half %s", got)
	}
	b, err := os.ReadFile("testdata/cache.args.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeCacheArgs(b)
	if err != nil {
		t.Fatal(err)
	}
	pub := testStationKey.Public().(ed25519.PublicKey)
	for _, it := range a.Items {
		if err := VerifyCacheItem(pub, it); err != nil {
			t.Errorf("%s: %v", it.Ref(), err)
		}
		if got := SignCacheItem(testStationKey, it); got != it.Sig {
			t.Errorf("%s: signature %s, golden %s", it.Ref(), got, it.Sig)
		}
		for name, bad := range map[string]CacheItem{
			"relabelled":   func() CacheItem { x := it; x.Key = "13"; return x }(),
			"resized":      func() CacheItem { x := it; x.Size++; return x }(),
			"other hash":   func() CacheItem { x := it; x.SHA256 = strings.Repeat("0", 64); return x }(),
			"as programme": func() CacheItem { x := it; x.Kind = CacheKindProgramme; return x }(),
			"with meta":    func() CacheItem { x := it; x.Meta = "x"; return x }(),
		} {
			if VerifyCacheItem(pub, bad) == nil {
				t.Errorf("%s %s: verified", it.Ref(), name)
			}
		}
		other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
		if VerifyCacheItem(other.Public().(ed25519.PublicKey), it) == nil {
			t.Errorf("%s: verified with another key", it.Ref())
		}
	}
	if got := a.Items[0].Location(a.BaseURL); got != "https://ctl.example:8443/cache/"+a.Items[0].SHA256 {
		t.Errorf("location from base_url: %s", got)
	}
	if got := a.Items[1].Location(a.BaseURL); got != a.Items[1].URL {
		t.Errorf("own url: %s", got)
	}
	// The label keeps a cache signature from verifying as firmware.
	if VerifyFirmware(pub, "12", a.Items[0].SHA256, a.Items[0].Sig) == nil {
		t.Error("a cache signature verified as firmware")
	}
}

func TestDecodeCacheArgsRefuses(t *testing.T) {
	item := func(mod string) string {
		it := `{"kind":"stored","key":"12","sha256":"9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab","size":48213,"url":"https://h/c","sig":"RJHSXlB330nzl4cWz+EbDMKdZg3gB2hlPsCX6oXZoucYxaxeq95WLxdWqzJAIYOTQoarYWx9qC/2oBgBlUamBA=="}`
		if mod != "" {
			var m map[string]any
			json.Unmarshal([]byte(it), &m)
			k, v, _ := strings.Cut(mod, "=")
			if v == "-" {
				delete(m, k)
			} else {
				var x any
				json.Unmarshal([]byte(v), &x)
				m[k] = x
			}
			b, _ := json.Marshal(m)
			it = string(b)
		}
		return it
	}
	if _, err := DecodeCacheArgs([]byte(`{"version":1,"items":[` + item("") + `]}`)); err != nil {
		t.Fatalf("good manifest refused: %v", err)
	}
	if a, err := DecodeCacheArgs([]byte(`{"version":1,"items":[]}`)); err != nil || a.Items == nil {
		t.Fatalf("empty manifest: %+v %v", a, err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"version":1}`, "items is required"},
		{`{"version":1,"items":null}`, "items is required"},
		{`{"items":[]}`, "version is required"},
		{`{"version":0,"items":[]}`, "positive"},
		{`{"version":1,"items":[],"x":1}`, "unknown field"},
		{`{"version":1,"items":[` + item("key=\"012\"") + `]}`, "stored key"},
		{`{"version":1,"items":[` + item("key=\"1000\"") + `]}`, "stored key"},
		{`{"version":1,"items":[` + item("key=\"0\"") + `]}`, "stored key"},
		{`{"version":1,"items":[` + item("kind=\"firmware\"") + `]}`, "unknown kind"},
		{`{"version":1,"items":[` + item("sha256=\"ab\"") + `]}`, "sha256"},
		{`{"version":1,"items":[` + item("size=0") + `]}`, "size"},
		{`{"version":1,"items":[` + item("url=\"file:///etc/passwd\"") + `]}`, "url"},
		{`{"version":1,"items":[` + item("url=-") + `]}`, "url is required"},
		{`{"version":1,"items":[` + item("sig=\"AAAA\"") + `]}`, "sig"},
		{`{"version":1,"items":[` + item("sig=-") + `]}`, "sig must be"},
		{`{"version":1,"items":[` + item("meta=\""+strings.Repeat("m", 513)+"\"") + `]}`, "meta"},
		{`{"version":1,"items":[` + item("") + `,` + item("") + `]}`, "listed twice"},
		{`{"version":1,"base_url":"ftp://x/","items":[]}`, "base_url"},
	} {
		_, err := DecodeCacheArgs([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.body, err, c.want)
		}
	}
}

func TestDecodePlayStoredArgsRefuses(t *testing.T) {
	const sha = `"sha256":"9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"`
	a, err := DecodePlayStoredArgs([]byte(`{"session":"s","code":1,"priority":0,` + sha + `}`))
	if err != nil || a.Plays() != 1 {
		t.Fatalf("minimal args: %+v %v", a, err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"code":1,"priority":0,` + sha + `}`, "session is required"},
		{`{"session":"","code":1,"priority":0,` + sha + `}`, "session"},
		{`{"session":"s","priority":0,` + sha + `}`, "code is required"},
		{`{"session":"s","code":1,` + sha + `}`, "priority is required"},
		{`{"session":"s","code":1,"priority":0}`, "sha256 is required"},
		{`{"session":"s","code":1000,"priority":0,` + sha + `}`, "code 1000"},
		{`{"session":"s","code":1,"priority":256,` + sha + `}`, "priority"},
		{`{"session":"s","code":1,"priority":0,"repeats":21,` + sha + `}`, "repeats"},
		{`{"session":"s","code":1,"priority":0,"volume":101,` + sha + `}`, "volume"},
		{`{"session":"s","code":1,"priority":0,"until_ms":-1,` + sha + `}`, "until_ms"},
		{`{"session":"s","code":1,"priority":0,"sha256":"x"}`, "sha256"},
		{`{"session":"s","code":1,"priority":0,"loop":true,` + sha + `}`, "unknown field"},
	} {
		_, err := DecodePlayStoredArgs([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.body, err, c.want)
		}
	}
}

func FuzzCacheArgs(f *testing.F) {
	for _, p := range []string{"testdata/cache.args.json", "testdata/play_stored.args.json", "testdata/cacheholding.json"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"items":[{"kind":"programme","key":"a:b","sha256":"","size":-1}]}`))
	f.Add([]byte(`{"session":"s","code":0,"priority":0,"sha256":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := DecodeCacheArgs(b); err == nil {
			if a.Version <= 0 || len(a.Items) > MaxCacheItems || a.Items == nil {
				t.Fatalf("bad manifest accepted: %+v", a)
			}
			seen := map[string]bool{}
			for _, it := range a.Items {
				if seen[it.Ref()] || it.Size <= 0 || it.Location(a.BaseURL) == "" {
					t.Fatalf("bad item accepted: %+v", it)
				}
				seen[it.Ref()] = true
			}
			reencodes(t, b, DecodeCacheArgs)
		}
		if a, err := DecodePlayStoredArgs(b); err == nil {
			if a.Code < MinStoredCode || a.Code > MaxStoredCode || a.Plays() < 1 || a.Plays() > MaxStoredRepeats || a.Session == "" {
				t.Fatalf("bad play_stored accepted: %+v", a)
			}
			reencodes(t, b, DecodePlayStoredArgs)
		}
		if h, err := DecodeCacheHolding(b); err == nil {
			if h.Missing < 0 || h.Bytes < 0 {
				t.Fatalf("bad holding accepted: %+v", h)
			}
			reencodes(t, b, DecodeCacheHolding)
		}
	})
}

// The holding a receiver reports travels in tele and in the ack's result.
func TestCacheHoldingInTelemetry(t *testing.T) {
	b, err := os.ReadFile("testdata/tele.cache.json")
	if err != nil {
		t.Fatal(err)
	}
	tel, err := DecodeTelemetry(b)
	if err != nil || tel.Cache == nil || !tel.Cache.Holds("stored:12") || tel.Cache.Holds("stored:7") {
		t.Fatalf("tele.cache: %+v %v", tel.Cache, err)
	}
	bad := bytes.Replace(b, []byte(`"missing":1`), []byte(`"missing":-1`), 1)
	if _, err := DecodeTelemetry(bad); err == nil {
		t.Error("negative missing accepted")
	}
	if !reflect.DeepEqual(jsonFields(reflect.TypeOf(CacheHolding{}))["missing"], true) {
		t.Error("missing should be required")
	}
}
