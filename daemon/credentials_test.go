package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

type credentialsAnswer struct {
	Device   api.DeviceView `json:"device"`
	Password string         `json:"password"`
	Broker   string         `json:"broker"`
}

// startReceiver starts a simulated receiver against the system's broker;
// the test closes it.
func (s *system) startReceiver(id, password string) (*firmwaresim.Receiver, error) {
	r := firmwaresim.NewReceiver(firmwaresim.Config{ID: id, Password: password, Broker: s.m.MQTTURL(),
		Logger: testLogger(s.t).With("receiver", id)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { r.Close() })
	return r, nil
}

// waitAuthFailures polls until the embedded broker has refused more than n
// connections.
func (s *system) waitAuthFailures(n uint64, what string) {
	s.t.Helper()
	loatest.Eventually(s.t, loatest.Wait, func() bool { return s.m.Broker.Stats().AuthFailures > n }, "the broker refuses "+what)
}

// Rotating a device's credentials drops it and refuses the old password;
// the new one works. Revoking drops it and refuses every password; the
// device stays registered, shown offline and revoked.
func TestSystemRotateAndRevokeCredentials(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2}) // rx-000 in commune a, rx-001 in b
	ctx := context.Background()
	old := s.byArea["a"][0]
	id := old.ID()

	// Out of scope or role: refused, nothing changes.
	var tok struct {
		Secret string `json:"secret"`
	}
	for _, c := range []struct {
		role, area string
		status     int
	}{{"technician", "b", http.StatusNotFound}, {"operator", "", http.StatusForbidden}} {
		if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": c.role, "role": c.role, "area_id": c.area}, &tok); err != nil {
			t.Fatal(err)
		}
		other := api.NewClient(s.m.URL(), tok.Secret)
		if err := other.JSON(ctx, "POST", "/api/v1/devices/"+id+"/credentials", nil, nil); !isStatus(err, c.status) {
			t.Errorf("%s of %q rotating %s: %v, want %d", c.role, c.area, id, err, c.status)
		}
		if err := other.JSON(ctx, "DELETE", "/api/v1/devices/"+id+"/credentials", nil, nil); !isStatus(err, c.status) {
			t.Errorf("%s of %q revoking %s: %v, want %d", c.role, c.area, id, err, c.status)
		}
	}
	waitOnlineAPI(t, s.api, id, true)
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/nobody/credentials", nil, nil); !isStatus(err, http.StatusNotFound) {
		t.Errorf("rotating an unknown device: %v, want 404", err)
	}

	// Rotate.
	failures := s.m.Broker.Stats().AuthFailures
	var rot credentialsAnswer
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/"+id+"/credentials", nil, &rot); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if len(rot.Password) != 32 || !strings.HasPrefix(rot.Broker, "embedded:") ||
		rot.Device.Credentials != loa.CredentialsActive || rot.Device.RotatedAt.IsZero() {
		t.Fatalf("rotate answered %+v", rot)
	}
	// The live connection is dropped; the receiver keeps retrying with its
	// old password and the broker keeps refusing it.
	waitOnlineAPI(t, s.api, id, false)
	s.waitAuthFailures(failures, "the old password after a rotation")
	if _, err := s.startReceiver(id, "0123456789abcdef0123456789abcdef"); err == nil {
		t.Error("a receiver with a made-up password connected")
	}
	old.Kill() // the box is re-configured: it stops retrying the old password
	renewed, err := s.startReceiver(id, rot.Password)
	if err != nil {
		t.Fatalf("the new password: %v", err)
	}
	waitOnlineAPI(t, s.api, id, true)

	// Revoke.
	if err := s.api.JSON(ctx, "DELETE", "/api/v1/devices/"+id+"/credentials", nil, nil); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	waitOnlineAPI(t, s.api, id, false)
	failures = s.m.Broker.Stats().AuthFailures
	s.waitAuthFailures(failures, "the revoked device reconnecting")
	if _, err := s.startReceiver(id, rot.Password); err == nil {
		t.Fatal("a revoked device connected with its last password")
	}
	renewed.Kill()
	var v api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/"+id, nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.Credentials != loa.CredentialsRevoked || v.RevokedAt.IsZero() || v.State == nil || v.State.Online {
		t.Errorf("revoked device shows %+v state %+v, want registered, revoked, offline", v.Device, v.State)
	}
	// The neighbour in commune b was never touched.
	if st, _ := s.m.Fleet.DeviceState(s.byArea["b"][0].ID()); !st.Online || st.Boot != s.byArea["b"][0].Boot() || s.byArea["b"][0].Conn() != 1 {
		t.Errorf("the neighbour's state %+v, want online on its first connection", st)
	}

	// Re-issuing credentials brings a revoked device back.
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/"+id+"/credentials", nil, &rot); err != nil {
		t.Fatal(err)
	}
	if _, err := s.startReceiver(id, rot.Password); err != nil {
		t.Fatalf("re-issued credentials: %v", err)
	}
	waitOnlineAPI(t, s.api, id, true)

	var audit []loa.AuditRecord
	if err := s.api.JSON(ctx, "GET", "/api/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		if a.Object == id && strings.HasPrefix(a.Action, "device.credentials.") {
			actions = append(actions, a.Action)
		}
	}
	want := []string{"device.credentials.rotate", "device.credentials.revoke", "device.credentials.rotate"} // newest first
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit %v, want %v", actions, want)
	}
}
