package loa_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestBulletinValidate(t *testing.T) {
	now := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	ok := func() loa.Bulletin {
		return loa.Bulletin{Title: "Phòng chống bão", Level: loa.BulletinPriority, MediaID: "m1", ValidFrom: now,
			ValidUntil: now.Add(24 * time.Hour), MustAirBy: now.Add(2 * time.Hour), Areas: []string{"x1", "x2"}}
	}
	if b := ok(); b.Validate() != nil {
		t.Fatalf("a good bulletin: %v", b.Validate())
	}
	for _, tc := range []struct {
		field  string
		change func(b *loa.Bulletin)
	}{
		{"title", func(b *loa.Bulletin) { b.Title = "" }},
		{"level", func(b *loa.Bulletin) { b.Level = "khan_cap" }},
		{"media_id, text", func(b *loa.Bulletin) { b.Text = "đọc" }},
		{"media_id, text", func(b *loa.Bulletin) { b.MediaID = "" }},
		{"areas", func(b *loa.Bulletin) { b.Areas = nil }},
		{"areas", func(b *loa.Bulletin) { b.Areas = []string{"x1", "x1"} }},
		{"areas", func(b *loa.Bulletin) { b.Areas = []string{"X 1"} }},
		{"valid_until", func(b *loa.Bulletin) { b.ValidUntil = b.ValidFrom }},
		{"must_air_by", func(b *loa.Bulletin) { b.MustAirBy = time.Time{} }},
		{"must_air_by", func(b *loa.Bulletin) { b.MustAirBy = b.ValidUntil.Add(time.Second) }},
		{"must_air_by", func(b *loa.Bulletin) { b.Level = loa.BulletinNormal }},
	} {
		b := ok()
		tc.change(&b)
		err := b.Validate()
		if loa.ErrorCode(err) != loa.EINVALID || !strings.HasPrefix(loa.ErrorMessage(err), tc.field+":") {
			t.Errorf("%s: %v, want invalid naming it", tc.field, err)
		}
	}
}

func feedKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}

func TestFeedSignAndVerify(t *testing.T) {
	pub, key := feedKey(t)
	p := loa.FeedPayload{Publisher: "Đài tỉnh", GeneratedAt: time.Now().UTC().Truncate(time.Second), Bulletins: []loa.FeedBulletin{{
		ID: "bl-1", AreaID: "xr", Title: "Bão số 3", Level: loa.BulletinPriority, MediaSHA256: strings.Repeat("ab", 32), MediaSize: 10,
		ValidUntil: time.Now().Add(time.Hour).UTC().Truncate(time.Second), State: loa.BulletinReceived,
	}}}
	env, err := loa.SignFeed(key, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loa.VerifyFeed(pub, env)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bulletins[0].Title != "Bão số 3" || got.Publisher != p.Publisher {
		t.Errorf("verified %+v", got)
	}

	// Another key, a changed payload, the same bytes signed without the
	// label (as another use of the station key would) are refused.
	other, _ := feedKey(t)
	if _, err := loa.VerifyFeed(other, env); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("another key: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(env.Payload)
	changed := env
	changed.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), "Bão số 3", "Bão số 4", 1)))
	if _, err := loa.VerifyFeed(pub, changed); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a changed payload: %v", err)
	}
	unlabelled := env
	unlabelled.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, raw))
	if _, err := loa.VerifyFeed(pub, unlabelled); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a signature without the label: %v", err)
	}
	// A signed payload with a bad entry is refused too.
	p.Bulletins[0].MediaSHA256 = "short"
	bad, _ := loa.SignFeed(key, p)
	if _, err := loa.VerifyFeed(pub, bad); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a bad hash: %v", err)
	}
}

func TestFeedReportAllowed(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{loa.BulletinReceived, loa.BulletinScheduled, true},
		{loa.BulletinReceived, loa.BulletinDeclined, true},
		{loa.BulletinScheduled, loa.BulletinAired, true},
		{loa.BulletinAired, loa.BulletinAired, true},
		{loa.BulletinAired, loa.BulletinScheduled, false},
		{loa.BulletinDeclined, loa.BulletinAired, false},
		{loa.BulletinExpired, loa.BulletinScheduled, false},
		{loa.BulletinReceived, loa.BulletinExpired, false},
	} {
		if err := loa.FeedReportAllowed(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("%s → %s: %v", tc.from, tc.to, err)
		}
	}
}

// FuzzVerifyFeed: whatever a publisher (or a man in the middle) sends,
// verifying answers an error or a payload, never panics, and accepts
// nothing not signed by the key.
func FuzzVerifyFeed(f *testing.F) {
	pub, key := feedKey(f)
	env, _ := loa.SignFeed(key, loa.FeedPayload{Publisher: "p"})
	good, _ := json.Marshal(env)
	f.Add(good)
	f.Add([]byte(`{"format":"loa-bulletin-v1","payload":"e30=","signature":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e loa.FeedEnvelope
		if json.Unmarshal(b, &e) != nil {
			return
		}
		p, err := loa.VerifyFeed(pub, e)
		if err == nil && p == nil {
			t.Fatal("no error and no payload")
		}
		if err == nil {
			raw, _ := base64.StdEncoding.DecodeString(e.Payload)
			sig, _ := base64.StdEncoding.DecodeString(e.Signature)
			if !ed25519.Verify(pub, append([]byte(loa.FeedSignatureLabel), raw...), sig) {
				t.Fatal("accepted an envelope the key did not sign")
			}
		}
	})
}
