package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// storeCreds changes credentials in the real store; enforced says whether
// a broker acted on it (false: an external broker).
type storeCreds struct {
	e        *env
	enforced bool
}

func (c storeCreds) RotateCredentials(ctx context.Context, id string) (string, bool, error) {
	pw, err := c.e.db.ResetDeviceCredentials(ctx, id)
	return pw, c.enforced, err
}

func (c storeCreds) RevokeCredentials(ctx context.Context, id string) (bool, error) {
	_, err := c.e.db.RevokeDeviceCredentials(ctx, id)
	return c.enforced, err
}

// credsEnv is newEnv's store and tokens behind a server with credentials.
func credsEnv(t *testing.T, enforced bool) *env {
	e := newEnv(t)
	s := &api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db, Creds: storeCreds{e, enforced}}
	e.srv.Close()
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(e.srv.Close)
	return e
}

func TestCredentialsEmbeddedBroker(t *testing.T) {
	e := credsEnv(t, true)
	r := e.do("POST", "/api/v1/devices/dev-a1/credentials", e.techA, nil)
	want(t, r, http.StatusOK)
	var rot struct {
		Device   map[string]any `json:"device"`
		Password string         `json:"password"`
		Broker   string         `json:"broker"`
	}
	r.json(t, &rot)
	if len(rot.Password) != 32 || !strings.HasPrefix(rot.Broker, "embedded:") || rot.Device["credentials"] != "active" || rot.Device["rotated_at"] == nil {
		t.Fatalf("rotate answered %s", r.body)
	}
	if ok, _ := e.db.CheckDeviceCredentials(context.Background(), "dev-a1", rot.Password); !ok {
		t.Error("the password the API showed does not work")
	}

	// Outside the technician's commune: not found; an operator: forbidden.
	wantError(t, e.do("DELETE", "/api/v1/devices/dev-b1/credentials", e.techA, nil), http.StatusNotFound, loa.ENOTFOUND, "dev-b1")
	wantError(t, e.do("POST", "/api/v1/devices/dev-a1/credentials", e.opA, nil), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, e.do("POST", "/api/v1/devices/nope/credentials", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND, "nope")

	r = e.do("DELETE", "/api/v1/devices/dev-a1/credentials", e.techA, nil)
	want(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with a body: %s", r.body)
	}
	if ok, _ := e.db.CheckDeviceCredentials(context.Background(), "dev-a1", rot.Password); ok {
		t.Error("a revoked password still works")
	}
	r = e.do("GET", "/api/v1/devices/dev-a1", e.techA, nil)
	want(t, r, http.StatusOK)
	var v map[string]any
	r.json(t, &v)
	if v["credentials"] != "revoked" || v["revoked_at"] == nil {
		t.Errorf("device after revoke: %s", r.body)
	}
	r = e.do("GET", "/api/v1/devices/dev-b1", e.admin, nil)
	r.json(t, &v)
	if v["credentials"] != "active" {
		t.Errorf("the other device: %s", r.body)
	}
	if got := e.auditActions(); !hasAction(got, "device.credentials.rotate dev-a1") || !hasAction(got, "device.credentials.revoke dev-a1") {
		t.Errorf("audit %v", got)
	}
}

// With an external broker the controller cannot enforce anything; the
// answer says so instead of pretending.
func TestCredentialsExternalBrokerSaysSo(t *testing.T) {
	e := credsEnv(t, false)
	r := e.do("POST", "/api/v1/devices/dev-a1/credentials", e.admin, nil)
	want(t, r, http.StatusOK)
	var ans struct {
		Password string `json:"password"`
		Broker   string `json:"broker"`
	}
	r.json(t, &ans)
	if ans.Password == "" || !strings.HasPrefix(ans.Broker, "external:") || !strings.Contains(ans.Broker, "password file") {
		t.Errorf("rotate on an external broker answered %s", r.body)
	}
	r = e.do("DELETE", "/api/v1/devices/dev-a1/credentials", e.admin, nil)
	want(t, r, http.StatusOK)
	r.json(t, &ans)
	if !strings.HasPrefix(ans.Broker, "external:") || !strings.Contains(ans.Broker, "ACL") {
		t.Errorf("revoke on an external broker answered %s", r.body)
	}
}

func hasAction(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
