package store_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func testAlert(id string, created time.Time) *loa.Alert {
	return &loa.Alert{
		ID: id, Title: "Bão số 9", Level: loa.AlertEmergency, Content: loa.AlertContent{MediaID: "m1", Tone: true},
		Targets: loa.Targets{Areas: []string{"qn"}}, Repeats: 2, Gap: 3 * time.Second, Volume: 90,
		ExpiresAt: created.Add(time.Hour), State: loa.AlertActive, CreatedBy: "tok1", CreatedAt: created,
		Report: []loa.Delivery{{Device: "rx-1", Area: "qn-1", State: loa.DeliveryQueued, QueuedAt: created}},
	}
}

func TestAlert_CreateUpdateList(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	a := testAlert("a1", t0)
	if err := db.CreateAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.Alert(ctx, "a1")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Alert = %+v, %v; want %+v", got, err, a)
	}
	wantCode(t, db.CreateAlert(ctx, testAlert("a1", t0)), loa.ECONFLICT)

	a.Report[0].State, a.Report[0].AckedAt = loa.DeliveryAcked, t0.Add(time.Second)
	a.State = loa.AlertFinished
	if err := db.PutAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Alert(ctx, "a1")
	if got.State != loa.AlertFinished || got.Report[0].State != loa.DeliveryAcked || !got.Report[0].AckedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after update: %+v", got)
	}
	wantCode(t, db.PutAlert(ctx, testAlert("nope", t0)), loa.ENOTFOUND)
	_, err = db.Alert(ctx, "nope")
	wantCode(t, err, loa.ENOTFOUND)

	if err := db.CreateAlert(ctx, testAlert("a0", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	list, err := db.Alerts(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a0" || list[1].ID != "a1" {
		t.Fatalf("Alerts = %v, %v; want a0 (newest) then a1", list, err)
	}
	wantCode(t, db.CreateAlert(ctx, &loa.Alert{ID: "Bad ID"}), loa.EINVALID)
}

func TestAlert_CAPIdentifierReservedOnce(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	capInfo := &loa.AlertCAPInfo{Sender: "kttv@nchmf.gov.vn", Identifier: "VN-2026-0917", Sent: "2026-11-26T15:00:00+07:00", XML: "<alert/>"}

	// Two deliveries of the same message race: exactly one is stored.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := testAlert("c"+string(rune('a'+i)), t0)
			c := *capInfo
			a.CAP = &c
			errs[i] = db.CreateAlert(ctx, a)
		}()
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch loa.ErrorCode(err) {
		case "":
			ok++
		case loa.ECONFLICT:
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d alerts stored for one CAP identifier, want 1", ok)
	}
	list, _ := db.Alerts(ctx)
	if len(list) != 1 {
		t.Fatalf("%d alerts stored, want 1", len(list))
	}
	got, err := db.AlertByCAP(ctx, capInfo.Sender, capInfo.Identifier)
	if err != nil || got.ID != list[0].ID || got.CAP.XML != "<alert/>" {
		t.Fatalf("AlertByCAP = %+v, %v; want %s", got, err, list[0].ID)
	}
	_, err = db.AlertByCAP(ctx, capInfo.Sender, "other")
	wantCode(t, err, loa.ENOTFOUND)
	// The same identifier from another sender is another message.
	b := testAlert("other-sender", t0)
	b.CAP = &loa.AlertCAPInfo{Sender: "pccc@quangngai.gov.vn", Identifier: capInfo.Identifier}
	if err := db.CreateAlert(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = db.AlertByCAP(ctx, "a\x00b", "c")
	wantCode(t, err, loa.EINVALID)
	c := testAlert("nul", t0)
	c.CAP = &loa.AlertCAPInfo{Sender: "x", Identifier: "y\x00"}
	wantCode(t, db.CreateAlert(ctx, c), loa.EINVALID)
}

func TestSetAreaTests(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if err := db.CreateArea(ctx, &loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	a, err := db.SetAreaTests(ctx, "p", true)
	if err != nil || !a.Tests {
		t.Fatalf("SetAreaTests = %+v, %v", a, err)
	}
	if got, _ := db.Area(ctx, "p"); !got.Tests || got.Name != "P" {
		t.Errorf("stored %+v", got)
	}
	if a, _ := db.SetAreaTests(ctx, "p", false); a.Tests {
		t.Error("mark not cleared")
	}
	_, err = db.SetAreaTests(ctx, "nope", true)
	wantCode(t, err, loa.ENOTFOUND)
}
