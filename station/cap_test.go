package station_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
	"github.com/loa-broadcast/loa/station"
)

// fakeCaller is the API's caller: it sees what visible says, may send
// unless refuse is set, and keeps its audit log.
type fakeCaller struct {
	id      string
	visible bool
	refuse  error

	mu    sync.Mutex
	audit []string
}

func (c *fakeCaller) ID() string                               { return c.id }
func (c *fakeCaller) AreaInScope(string) (bool, error)         { return c.visible, nil }
func (c *fakeCaller) TargetsVisible(loa.Targets) (bool, error) { return c.visible, nil }
func (c *fakeCaller) MaySend(*loa.Alert) error                 { return c.refuse }
func (c *fakeCaller) MaySendCAPAs(string) error                { return nil }
func (c *fakeCaller) Audit(action, object, detail string) {
	c.mu.Lock()
	c.audit = append(c.audit, action)
	c.mu.Unlock()
}

// capMessage is a CAP message sent at the bubble's start, with a polygon
// around 21.0,105.8.
func capMessage(t *testing.T, id, status, msgType, refs string) *cap.Message {
	t.Helper()
	info := `<info><category>Met</category><event>Bão</event><urgency>Immediate</urgency><severity>Severe</severity>
<certainty>Observed</certainty><headline>Bão số 5</headline><description>Bão số 5 đổ bộ</description>
<area><areaDesc>Ngoại thành</areaDesc><polygon>20.9,105.7 21.1,105.7 21.1,106.0 20.9,106.0 20.9,105.7</polygon></area></info>`
	if msgType == "Cancel" {
		info = ""
	}
	if refs != "" {
		refs = "<references>" + refs + "</references>"
	}
	msg, err := cap.Parse(fmt.Appendf(nil, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>%s</identifier>
<sender>kttv.hanoi</sender><sent>2000-01-01T07:00:00+07:00</sent><status>%s</status><msgType>%s</msgType>
<scope>Public</scope>%s%s</alert>`, id, status, msgType, refs, info))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestCAPIngest sends an alert from a CAP message to the receivers inside
// its polygon, refuses the same message twice, cancels it by reference,
// and sounds nothing for a System message.
func TestCAPIngest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("in", "out"))
		for _, d := range []*loa.Device{{ID: "in", AreaID: "xa", Lat: 21.0, Lon: 105.8}, {ID: "out", AreaID: "xa", Lat: 10, Lon: 100}} {
			if _, err := w.db.CreateDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		ingest := station.NewCAP(w.db, w.alerts, nil, nil, discard)
		admin := &fakeCaller{id: "tok-admin", visible: true}

		res, err := ingest.IngestCAP(ctx, capMessage(t, "c-1", "Actual", "Alert", ""), admin)
		if err != nil {
			t.Fatal(err)
		}
		a := res.Alert
		if res.Cancel || res.Silent != "" || a == nil || !slices.Equal(a.Targets.Devices, []string{"in"}) || a.CreatedBy != "tok-admin" || a.State != loa.AlertActive {
			t.Fatalf("sent %+v, alert %+v: want an active alert to the receiver inside the polygon, by tok-admin", res, a)
		}
		if _, err := ingest.IngestCAP(ctx, capMessage(t, "c-1", "Actual", "Alert", ""), admin); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Errorf("the same message again: %v, want ECONFLICT", err)
		}
		refused := &fakeCaller{id: "tok-op", visible: true, refuse: loa.Errorf(loa.EFORBIDDEN, "level")}
		if _, err := ingest.IngestCAP(ctx, capMessage(t, "c-2", "Actual", "Alert", ""), refused); loa.ErrorCode(err) != loa.EFORBIDDEN {
			t.Errorf("a caller who may not send: %v, want EFORBIDDEN", err)
		}
		if n := len(w.engine.sessions()); n != 1 {
			t.Errorf("%d sessions started, want 1", n)
		}

		cancel := capMessage(t, "c-3", "Actual", "Cancel", "kttv.hanoi,c-1,2000-01-01T07:00:00+07:00")
		if _, err := ingest.IngestCAP(ctx, cancel, &fakeCaller{id: "tok-other"}); loa.ErrorCode(err) != loa.ENOTFOUND {
			t.Errorf("a Cancel from a caller who cannot see the alert: %v, want ENOTFOUND", err)
		}
		res, err = ingest.IngestCAP(ctx, cancel, admin)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Cancel || res.Alert == nil || res.Alert.ID != a.ID || res.Alert.State != loa.AlertCancelled {
			t.Errorf("Cancel: %+v, want alert %s cancelled", res, a.ID)
		}

		res, err = ingest.IngestCAP(ctx, capMessage(t, "c-4", "System", "Alert", ""), admin)
		if err != nil || res.Silent == "" || res.Alert != nil {
			t.Errorf("System message: %+v, %v; want silent", res, err)
		}
		if want := []string{"alert.send", "alert.cancel", "alert.cap"}; !slices.Equal(admin.audit, want) {
			t.Errorf("audit %v, want %v", admin.audit, want)
		}
	})
}
