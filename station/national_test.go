package station_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
	"github.com/loa-broadcast/loa/station"
)

// memNational is a NationalStore in memory, for the fuzzer.
type memNational struct {
	mu        sync.Mutex
	provinces []*loa.Province
	alerts    map[string]*loa.NationalAlert
}

func (m *memNational) PutProvince(ctx context.Context, p *loa.Province, create bool) error {
	return loa.Errorf(loa.EUNSUPPORTED, "not here")
}
func (m *memNational) Province(ctx context.Context, id string) (*loa.Province, error) {
	for _, p := range m.provinces {
		if p.ID == id {
			return p, nil
		}
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "no province %q", id)
}
func (m *memNational) Provinces(ctx context.Context) ([]*loa.Province, error) {
	return m.provinces, nil
}
func (m *memNational) DeleteProvince(ctx context.Context, id string) error { return nil }
func (m *memNational) PutNationalAlert(ctx context.Context, a *loa.NationalAlert) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alerts[a.ID] = a
	return nil
}
func (m *memNational) NationalAlert(ctx context.Context, id string) (*loa.NationalAlert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.alerts[id]; a != nil {
		return a, nil
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "no national alert %q", id)
}
func (m *memNational) NationalAlerts(ctx context.Context) ([]*loa.NationalAlert, error) {
	return nil, nil
}

// Whatever CAP message the national source sends, the national role
// either refuses it with a client error or records an alert whose every
// push is a message the province's parser takes, naming that province.
func FuzzNationalCAP(f *testing.F) {
	for _, dir := range []string{"valid", "invalid", "unmappable"} {
		files, _ := filepath.Glob(filepath.Join("..", "cap", "testdata", dir, "*.xml"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := cap.Parse(data)
		if err != nil {
			return
		}
		db := &memNational{alerts: map[string]*loa.NationalAlert{}, provinces: []*loa.Province{}}
		// Every geocode of the message is a province, so the push is built.
		for _, in := range msg.Info {
			for _, ar := range in.Area {
				for _, g := range ar.Geocode {
					db.provinces = append(db.provinces, &loa.Province{ID: "p" + g.Value, Name: "Tỉnh", Code: g.Value, URL: "https://127.0.0.1:1"})
				}
			}
		}
		now := msg.SentAt.Add(time.Minute)
		n := station.NewNational(station.NationalConfig{DB: db, Sender: "canhbao.gov.vn", Now: func() time.Time { return now }})
		a, silent, err := n.IngestNationalCAP(context.Background(), msg, "tok-1", nil)
		switch {
		case err != nil:
			if c := loa.ErrorCode(err); c != loa.EINVALID && c != loa.ENOTFOUND && c != loa.ETOOLARGE {
				t.Fatalf("error code %s: %v", c, err)
			}
		case silent != "":
			if a != nil {
				t.Fatal("silent, yet an alert")
			}
		default:
			if len(a.Provinces) == 0 || a.Sender != "canhbao.gov.vn" || !a.ExpiresAt.After(now) {
				t.Fatalf("national alert %+v", a)
			}
			for _, p := range a.Provinces {
				prov, _ := db.Province(context.Background(), p.Province)
				b, err := station.NationalMessage(a, prov)
				if err != nil {
					t.Fatalf("push to %s: %v", p.Province, err)
				}
				m, err := cap.Parse(b)
				if err != nil || m.Sender != "canhbao.gov.vn" || m.Identifier != a.ID || !strings.Contains(string(b), "<value>"+prov.Code+"</value>") {
					t.Fatalf("push to %s: %v\n%s", p.Province, err, b)
				}
			}
			a.CancelledAt, a.CancelReason = now, msg.Note
			b, err := station.NationalCancelMessage(a)
			if err != nil {
				t.Fatalf("cancel: %v", err)
			}
			if m, err := cap.Parse(b); err != nil || m.MsgType != "Cancel" || len(m.Refs) != 1 || m.Refs[0].Identifier != a.ID {
				t.Fatalf("cancel: %v\n%s", err, b)
			}
		}
	})
}
