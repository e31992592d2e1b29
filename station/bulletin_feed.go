package station

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// FeedSubscription is one publisher this station takes bulletins from
// (docs/bulletin-feed.md).
type FeedSubscription struct {
	URL       string            // the publisher's base URL: https://province.example
	Token     string            // a token of role feed on the publisher
	PublicKey ed25519.PublicKey // the publisher's station key
	AreaID    string            // the local commune its bulletins are for
	Every     time.Duration     // how often it is polled; 0: 30 s
	Client    *http.Client      // nil: one with a 30 s timeout
}

// maxFeedBody bounds a feed envelope; maxFeedMedia a bulletin's audio.
const (
	maxFeedBody  = 8 << 20
	maxFeedMedia = 200 << 20
)

// Validate names what cannot work.
func (f *FeedSubscription) Validate() error {
	u, err := url.Parse(f.URL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return loa.Errorf(loa.EINVALID, "url: the publisher's http(s) base URL")
	case f.Token == "":
		return loa.Errorf(loa.EINVALID, "token: the publisher's feed token is required")
	case len(f.PublicKey) != ed25519.PublicKeySize:
		return loa.Errorf(loa.EINVALID, "public_key: the publisher's station key (base64 of 32 bytes)")
	}
	return loa.ValidateID("area_id", f.AreaID)
}

// Subscribe polls f until ctx ends: each round imports the bulletins it
// does not hold yet into the commune's inbox and reports back the
// tracking of those it imported. A failed round is logged and retried
// at the next.
func (s *Bulletins) Subscribe(ctx context.Context, f FeedSubscription) {
	every := f.Every
	if every <= 0 {
		every = 30 * time.Second
	}
	if f.Client == nil {
		f.Client = &http.Client{Timeout: 30 * time.Second}
	}
	f.URL = strings.TrimRight(f.URL, "/")
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.PollFeed(ctx, f); err != nil && ctx.Err() == nil {
			s.logger.Warn("bulletin feed not read", "url", f.URL, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PollFeed runs one round of f: verify, import, report.
func (s *Bulletins) PollFeed(ctx context.Context, f FeedSubscription) error {
	var env loa.FeedEnvelope
	if err := f.get(ctx, "/api/v1/feed/bulletins", maxFeedBody, func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&env)
	}); err != nil {
		return err
	}
	p, err := loa.VerifyFeed(f.PublicKey, env)
	if err != nil {
		return err
	}
	held, err := s.db.Bulletins(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, b := range held {
		if b.Source == f.URL {
			have[b.SourceID] = true
		}
	}
	now := s.now()
	for _, fb := range p.Bulletins {
		if have[fb.ID] || fb.State != loa.BulletinReceived || !now.Before(fb.ValidUntil) {
			continue
		}
		if err := s.importFeed(ctx, f, p.Publisher, fb); err != nil {
			return fmt.Errorf("bulletin %s: %w", fb.ID, err)
		}
		have[fb.ID] = true
	}
	return s.reportFeed(ctx, f)
}

// importFeed fetches fb's audio, checks its hash and size, and puts it
// in the commune's inbox.
func (s *Bulletins) importFeed(ctx context.Context, f FeedSubscription, publisher string, fb loa.FeedBulletin) error {
	var audio []byte
	if err := f.get(ctx, "/api/v1/feed/media/"+fb.MediaSHA256, maxFeedMedia, func(r io.Reader) (err error) {
		audio, err = io.ReadAll(r)
		return err
	}); err != nil {
		return err
	}
	if sum := sha256.Sum256(audio); !strings.EqualFold(hex.EncodeToString(sum[:]), fb.MediaSHA256) || int64(len(audio)) != fb.MediaSize {
		return loa.Errorf(loa.EINVALID, "media: the audio is not what the signed feed names")
	}
	by := "feed:" + publisher
	m, err := s.media.ImportMedia(ctx, fb.Title, bytes.NewReader(audio), by)
	if err != nil {
		return err
	}
	b := &loa.Bulletin{Title: fb.Title, Category: fb.Category, Level: fb.Level, MediaID: m.ID, Text: fb.Text,
		ValidFrom: fb.ValidFrom, ValidUntil: fb.ValidUntil, MustAirBy: fb.MustAirBy, Areas: []string{f.AreaID},
		CreatedBy: by, Source: f.URL, SourceID: fb.ID, SourceArea: fb.AreaID}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliver(ctx, b)
}

// reportFeed posts each change of the imported bulletins' tracking to
// the publisher, once.
func (s *Bulletins) reportFeed(ctx context.Context, f FeedSubscription) error {
	list, err := s.db.Bulletins(ctx)
	if err != nil {
		return err
	}
	for _, b := range list {
		if b.Source != f.URL {
			continue
		}
		c := b.Commune(f.AreaID)
		if c == nil || c.State == loa.BulletinReceived || c.State == loa.BulletinExpired {
			continue
		}
		mark := c.State + " " + strconv.Itoa(c.Receivers)
		if c.Reported == mark {
			continue
		}
		rep := loa.FeedReport{AreaID: b.SourceArea, State: c.State, How: c.How, At: c.At, AiredAt: c.AiredAt,
			Receivers: c.Receivers, Reason: c.Reason, By: c.By}
		body, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if err := f.post(ctx, "/api/v1/feed/bulletins/"+url.PathEscape(b.SourceID)+"/report", body); err != nil {
			return err
		}
		if _, err := s.db.UpdateBulletin(ctx, b.ID, func(b *loa.Bulletin) error {
			if c := b.Commune(f.AreaID); c != nil {
				c.Reported = mark
			}
			return nil
		}); err != nil {
			return err
		}
		s.logger.Info("bulletin reported to its publisher", "bulletin", b.ID, "source", b.SourceID, "state", c.State)
	}
	return nil
}

func (f *FeedSubscription) get(ctx context.Context, path string, limit int64, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+path, nil)
	if err != nil {
		return err
	}
	return f.do(req, limit, read)
}

func (f *FeedSubscription) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return f.do(req, 1<<20, func(io.Reader) error { return nil })
}

func (f *FeedSubscription) do(req *http.Request, limit int64, read func(io.Reader) error) error {
	req.Header.Set("Authorization", "Bearer "+f.Token)
	resp, err := f.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	return read(io.LimitReader(resp.Body, limit))
}
