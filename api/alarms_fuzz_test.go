package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// Small in-memory services for fuzzing the query parsers of the alarm,
// device and health routes through the real handler.
type fuzzServices struct{}

var fuzzAreas = []*loa.Area{
	{ID: "p", Kind: loa.AreaProvince}, {ID: "a", ParentID: "p", Kind: loa.AreaCommune},
	{ID: "b", ParentID: "p", Kind: loa.AreaCommune}, {ID: "a1", ParentID: "a", Kind: loa.AreaCluster},
}

func (fuzzServices) CreateArea(context.Context, *loa.Area) error {
	return loa.Errorf(loa.EINVALID, "no")
}
func (fuzzServices) Area(_ context.Context, id string) (*loa.Area, error) {
	for _, a := range fuzzAreas {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "area not found")
}
func (fuzzServices) Areas(context.Context) ([]*loa.Area, error) { return fuzzAreas, nil }
func (fuzzServices) CreateDevice(context.Context, *loa.Device) (string, error) {
	return "", loa.Errorf(loa.EINVALID, "no")
}
func (s fuzzServices) Device(ctx context.Context, id string) (*loa.Device, error) {
	list, _ := s.Devices(ctx)
	for _, d := range list {
		if d.ID == id {
			return d, nil
		}
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "device not found")
}
func (fuzzServices) Devices(context.Context) ([]*loa.Device, error) {
	return []*loa.Device{{ID: "da", AreaID: "a1", Credentials: loa.CredentialsActive}, {ID: "db", AreaID: "b", Credentials: loa.CredentialsActive}}, nil
}
func (fuzzServices) CreateToken(context.Context, *loa.Token) (string, error) { return "", nil }
func (fuzzServices) Token(context.Context, string) (*loa.Token, error)       { return nil, nil }
func (fuzzServices) Tokens(context.Context) ([]*loa.Token, error)            { return nil, nil }
func (fuzzServices) RevokeToken(context.Context, string) (*loa.Token, error) { return nil, nil }
func (fuzzServices) TokenBySecret(_ context.Context, secret string) (*loa.Token, error) {
	if secret == "scoped" {
		return &loa.Token{ID: "t2", Role: loa.RoleTechnician, AreaID: "a"}, nil
	}
	return &loa.Token{ID: "t1", Role: loa.RoleAdmin}, nil
}
func (fuzzServices) Alarms(context.Context, loa.AlarmFilter) ([]loa.Alarm, error) {
	return []loa.Alarm{
		{ID: "2", Device: "db", Area: "b", Kind: loa.AlarmOffline, Severity: loa.SeverityCritical},
		{ID: "1", Device: "da", Area: "a1", Kind: loa.AlarmTemperature, Severity: loa.SeverityWarning},
		{ID: "0", Device: "x", Kind: loa.AlarmAmpFault, Severity: loa.SeverityCritical},
	}, nil
}
func (fuzzServices) WatchAlarms(context.Context) ([]loa.Alarm, <-chan loa.AlarmChange, error) {
	return nil, nil, loa.Errorf(loa.EUNAVAILABLE, "no")
}
func (fuzzServices) HealthHistory(context.Context, string, time.Time, time.Time) ([]loa.HealthHour, error) {
	return nil, nil
}

// FuzzAlarmQueries sends arbitrary query strings to the alarm, device and
// health routes: each answers 200, 400 or 404, never 500, and a scoped
// caller never sees another commune's alarm.
func FuzzAlarmQueries(f *testing.F) {
	for _, q := range []string{"", "area=a&active=true&kind=offline", "active=false&limit=1", "kind=%00", "area=../../x",
		"state=online&problem=any", "problem=temperature&area=p", "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
		"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "limit=-1", "area=a&area=b", "to=9999-12-31T23:59:59Z"} {
		f.Add(q, false)
		f.Add(q, true)
	}
	svc := fuzzServices{}
	h := (&Server{Areas: svc, Devices: svc, Tokens: svc, Alarms: svc, Health: svc}).Handler()
	f.Fuzz(func(t *testing.T, query string, scoped bool) {
		secret := "admin"
		if scoped {
			secret = "scoped"
		}
		for _, path := range []string{"/api/v1/alarms", "/api/v1/devices", "/api/v1/devices/da/health"} {
			req := httptest.NewRequest("GET", "http://loa"+path, nil)
			req.URL.RawQuery = query
			if _, err := url.ParseQuery(query); err != nil {
				req.URL.RawQuery = url.QueryEscape(query)
			}
			req.Header.Set("Authorization", "Bearer "+secret)
			rec := httptest.NewRecorder()
			validateWithSpec(t, h).ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
			default:
				t.Fatalf("GET %s?%s = %d: %s", path, req.URL.RawQuery, rec.Code, rec.Body)
			}
			if path == "/api/v1/alarms" && rec.Code == http.StatusOK && scoped {
				var list []loa.Alarm
				if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
					t.Fatal(err)
				}
				for _, a := range list {
					if a.Area != "a1" {
						t.Fatalf("a caller scoped to a sees %+v", a)
					}
				}
			}
		}
	})
}
