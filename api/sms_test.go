package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/loa-broadcast/loa"
)

// fakeInbox records the SMS the gateway posts; a text "forged" is refused
// as the station refuses a reply that does not authenticate.
type fakeInbox struct {
	mu  sync.Mutex
	got []string
}

func (f *fakeInbox) HandleReply(ctx context.Context, from, text string) error {
	if text == "forged" {
		return loa.Errorf(loa.EFORBIDDEN, "text: the reply does not authenticate")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, from+" "+text)
	return nil
}

// The gateway's route takes its secret only (a user's token is no
// gateway), refuses bad bodies before the station sees them, and passes
// the station's refusal on.
func TestSMSInbound(t *testing.T) {
	e := newEnv(t)
	body := map[string]string{"from": "+84900000001", "text": "LOA1R rx-1 AAAA"}
	wantError(t, e.do("POST", "/api/v1/sms/inbound", "gw-secret", body), http.StatusServiceUnavailable, loa.EUNAVAILABLE)

	inbox := &fakeInbox{}
	e.server.SMS, e.server.SMSSecret = inbox, "gw-secret"
	wantError(t, e.do("POST", "/api/v1/sms/inbound", "", body), http.StatusUnauthorized, loa.EUNAUTHORIZED)
	wantError(t, e.do("POST", "/api/v1/sms/inbound", e.admin, body), http.StatusUnauthorized, loa.EUNAUTHORIZED)
	wantError(t, e.do("POST", "/api/v1/sms/inbound", "gw-secret", map[string]string{"text": "x"}), http.StatusBadRequest, loa.EINVALID, "from")
	wantError(t, e.do("POST", "/api/v1/sms/inbound", "gw-secret", map[string]string{"from": "+1", "text": "forged"}),
		http.StatusForbidden, loa.EFORBIDDEN)
	want(t, e.do("POST", "/api/v1/sms/inbound", "gw-secret", body), http.StatusNoContent)
	inbox.mu.Lock()
	defer inbox.mu.Unlock()
	if len(inbox.got) != 1 || inbox.got[0] != "+84900000001 LOA1R rx-1 AAAA" {
		t.Errorf("the station got %q", inbox.got)
	}
}

// A device's modem number is set at registration and by PATCH, checked
// as E.164, and removed with "".
func TestDeviceMSISDN(t *testing.T) {
	e := newEnv(t)
	var created struct {
		Device loa.Device `json:"device"`
	}
	r := e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-a2", "area_id": "a-1", "msisdn": "+84912345678"})
	want(t, r, http.StatusCreated)
	r.json(t, &created)
	if created.Device.MSISDN != "+84912345678" {
		t.Fatalf("created %+v", created.Device)
	}
	wantError(t, e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-a3", "area_id": "a-1", "msisdn": "0912"}),
		http.StatusBadRequest, loa.EINVALID, "msisdn")
	wantError(t, e.do("PATCH", "/api/v1/devices/dev-a2", e.techA, map[string]any{"msisdn": "+84 912"}),
		http.StatusBadRequest, loa.EINVALID, "msisdn")
	var v loa.Device
	r = e.do("PATCH", "/api/v1/devices/dev-a2", e.techA, map[string]any{"msisdn": "+84987654321"})
	want(t, r, http.StatusOK)
	r.json(t, &v)
	if v.MSISDN != "+84987654321" {
		t.Fatalf("patched %+v", v)
	}
	r = e.do("PATCH", "/api/v1/devices/dev-a2", e.techA, map[string]any{"msisdn": ""})
	want(t, r, http.StatusOK)
	if d, _ := e.db.Device(context.Background(), "dev-a2"); d.MSISDN != "" {
		t.Fatalf("removed: %q", d.MSISDN)
	}
}
