package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// DefaultBulletinCheckEvery is how often bulletins' tracking is checked
// when Config.BulletinCheckEvery is zero.
const DefaultBulletinCheckEvery = 5 * time.Second

// openBulletins makes the bulletin service and runs its checks (aired
// from delivery lines, expiry, the ưu tiên deadline alarm) and its feed
// subscriptions.
func (m *Main) openBulletins() error {
	subs, err := m.feedSubscriptions()
	if err != nil {
		return err
	}
	m.Bulletins = station.NewBulletins(m.DB, m.Media, media.EspeakNG{Voice: "vi"}, m.Sessions, m.Schedules, m.bulletinAlarms(),
		m.Logger.With("component", "bulletins"))
	every := m.Config.BulletinCheckEvery
	if every <= 0 {
		every = DefaultBulletinCheckEvery
	}
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Bulletins.Run(m.bg, every)
	}()
	for _, f := range subs {
		m.schedWG.Add(1)
		go func() {
			defer m.schedWG.Done()
			m.Bulletins.Subscribe(m.bg, f)
		}()
	}
	return nil
}

// feedFile is one entry of the -feed-subscribe file.
type feedFile struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	PublicKey string `json:"public_key"` // base64, or a station.pub file's contents
	AreaID    string `json:"area_id"`
	Every     string `json:"every,omitempty"`   // a Go duration; default 30s
	CAFile    string `json:"ca_file,omitempty"` // PEM roots the publisher's HTTPS certificate chains to (its station CA); default: the system's
}

// feedSubscriptions reads Config.FeedSubscribe and adds
// Config.FeedSubscriptions; each is checked.
func (m *Main) feedSubscriptions() ([]station.FeedSubscription, error) {
	subs := append([]station.FeedSubscription(nil), m.Config.FeedSubscriptions...)
	if m.Config.FeedSubscribe != "" {
		b, err := os.ReadFile(m.Config.FeedSubscribe)
		if err != nil {
			return nil, fmt.Errorf("feed-subscribe: %w", err)
		}
		var list []feedFile
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("feed-subscribe %s: %w", m.Config.FeedSubscribe, err)
		}
		for i, f := range list {
			pub, err := protocol.ParseStationPublicKey(f.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("feed-subscribe %s [%d]: public_key: %w", m.Config.FeedSubscribe, i, err)
			}
			var every time.Duration
			if f.Every != "" {
				if every, err = time.ParseDuration(f.Every); err != nil {
					return nil, fmt.Errorf("feed-subscribe %s [%d]: every: %w", m.Config.FeedSubscribe, i, err)
				}
			}
			sub := station.FeedSubscription{URL: f.URL, Token: f.Token, PublicKey: pub, AreaID: f.AreaID, Every: every}
			if f.CAFile != "" {
				pem, err := os.ReadFile(f.CAFile)
				if err != nil {
					return nil, fmt.Errorf("feed-subscribe %s [%d]: ca_file: %w", m.Config.FeedSubscribe, i, err)
				}
				roots := x509.NewCertPool()
				if !roots.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("feed-subscribe %s [%d]: ca_file %s holds no PEM certificate", m.Config.FeedSubscribe, i, f.CAFile)
				}
				sub.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
			}
			subs = append(subs, sub)
		}
	}
	for i := range subs {
		if err := subs[i].Validate(); err != nil {
			return nil, fmt.Errorf("feed-subscribe [%d]: %w", i, err)
		}
	}
	return subs, nil
}

// bulletinAlarms is stationAlarms for the bulletins' deadline alarm.
func (m *Main) bulletinAlarms() station.BulletinAlarms {
	if m.Alarms == nil {
		return nil
	}
	return m.Alarms
}

// stationAlarms is the alarm evaluator as the station's services take
// it: nil (no alarms) when there is none, never a nil pointer.
func (m *Main) stationAlarms() station.StationAlarms {
	if m.Alarms == nil {
		return nil
	}
	return m.Alarms
}
