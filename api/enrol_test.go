package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// enrolEndpoints is the station the test's receivers are told about.
type enrolEndpoints struct{}

func (enrolEndpoints) DeviceMQTTURL() string { return "mqtts://ctl.test:8883" }
func (enrolEndpoints) CACertPEM() ([]byte, error) {
	return []byte("-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"), nil
}

type claimAnswer struct {
	Claim struct {
		loa.Claim
		State string `json:"state"`
	} `json:"claim"`
	Device struct {
		loa.Device
	} `json:"device"`
	Broker string `json:"broker"`
}

// poll is a box's enrolment request, without a token.
func (e *env) poll(code string) response {
	e.t.Helper()
	return e.do("POST", protocol.EnrolPath, "", map[string]string{"claim_code": code})
}

func wantRetryAfter(t *testing.T, r response) {
	t.Helper()
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", r.header.Get("Retry-After"))
	}
}

// A technician claims a box into an area in scope; the box then gets its
// credentials once, signed with its code; any other code learns nothing.
func TestClaimAndEnrol(t *testing.T) {
	e := newEnv(t)
	code := protocol.NewClaimCode()

	// Before the claim, and for a code nobody claimed: the same answer.
	early, guess := e.poll(code), e.poll(protocol.NewClaimCode())
	wantError(t, early, http.StatusNotFound, loa.ENOTFOUND, "not claimed yet")
	wantRetryAfter(t, early)
	if string(early.body) != string(guess.body) || early.status != guess.status ||
		early.header.Get("Retry-After") != guess.header.Get("Retry-After") {
		t.Errorf("a code not yet claimed (%d %s) and a guess (%d %s) differ", early.status, early.body, guess.status, guess.body)
	}
	wantError(t, e.poll("0000"), http.StatusBadRequest, loa.EINVALID, "claim_code")

	body := map[string]any{"claim_code": code, "device_id": "rx-new", "area_id": "a-1", "name": "Loa cổng làng"}
	wantError(t, e.do("POST", "/api/v1/devices/claims", e.opA, body), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, e.do("POST", "/api/v1/devices/claims", e.techA, map[string]any{"claim_code": code, "area_id": "b-1"}),
		http.StatusForbidden, loa.EFORBIDDEN, "area_id")
	wantError(t, e.do("POST", "/api/v1/devices/claims", e.techA, map[string]any{"claim_code": "abc", "area_id": "a-1"}),
		http.StatusBadRequest, loa.EINVALID, "claim_code")
	wantError(t, e.do("POST", "/api/v1/devices/claims", e.techA, map[string]any{"claim_code": code, "device_id": "claims", "area_id": "a-1"}),
		http.StatusBadRequest, loa.EINVALID, "reserved")
	r := e.do("POST", "/api/v1/devices/claims", e.techA, body)
	want(t, r, http.StatusCreated)
	var claimed claimAnswer
	r.json(t, &claimed)
	if claimed.Claim.DeviceID != "rx-new" || claimed.Claim.State != "pending" || claimed.Device.Credentials != loa.CredentialsPending {
		t.Fatalf("claim answer %s", r.body)
	}
	// The same code again, from another scope: refused, naming nothing.
	other := e.do("POST", "/api/v1/devices/claims", e.admin, map[string]any{"claim_code": code, "area_id": "b-1"})
	wantError(t, other, http.StatusConflict, loa.ECONFLICT)
	if msg, _ := other.apiError(t); containsAny(msg, "rx-new", "a-1", claimed.Claim.ID) {
		t.Errorf("the conflict names the other claim: %q", msg)
	}

	var list []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	e.do("GET", "/api/v1/devices/claims?state=pending", e.techA, nil).json(t, &list)
	if len(list) != 1 || list[0].ID != claimed.Claim.ID {
		t.Errorf("technician A's pending claims %+v", list)
	}

	// The box enrols once; the label's grouping does not matter.
	r = e.poll(code[:5] + "-" + code[5:10] + "-" + code[10:15] + "-" + code[15:])
	want(t, r, http.StatusOK)
	var ans protocol.EnrolResponse
	r.json(t, &ans)
	if err := protocol.VerifyEnrolResponse(code, &ans); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	if ans.DeviceID != "rx-new" || ans.MQTTURL != "mqtts://ctl.test:8883" || ans.CAPEM == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("answer %s", r.body)
	}
	if ok, _ := e.db.CheckDeviceCredentials(context.Background(), "rx-new", ans.Password); !ok {
		t.Error("the enrolled password does not work")
	}
	wantError(t, e.poll(code), http.StatusGone, loa.EGONE)
	e.do("GET", "/api/v1/devices/claims?state=enrolled", e.techA, nil).json(t, &list)
	if len(list) != 1 || list[0].State != "enrolled" {
		t.Errorf("enrolled claims %+v", list)
	}

	// Polls are limited per code, whatever the address.
	hammered := protocol.NewClaimCode()
	for range 5 {
		want(t, e.poll(hammered), http.StatusNotFound)
	}
	r = e.poll(hammered)
	wantError(t, r, http.StatusTooManyRequests, loa.ERATELIMIT)
	wantRetryAfter(t, r)
	want(t, e.poll(protocol.NewClaimCode()), http.StatusNotFound) // another code from the same address
}

// A swap revokes the old unit at once; the new box takes over its id.
func TestReplaceDeviceAndCancelClaims(t *testing.T) {
	e := newEnv(t)
	code := protocol.NewClaimCode()
	wantError(t, e.do("POST", "/api/v1/devices/dev-b1/replace", e.techA, map[string]string{"claim_code": code}), http.StatusNotFound, loa.ENOTFOUND)
	wantError(t, e.do("POST", "/api/v1/devices/dev-a1/replace", e.opA, map[string]string{"claim_code": code}), http.StatusForbidden, loa.EFORBIDDEN)
	r := e.do("POST", "/api/v1/devices/dev-a1/replace", e.techA, map[string]string{"claim_code": code})
	want(t, r, http.StatusCreated)
	var swap claimAnswer
	r.json(t, &swap)
	if !swap.Claim.Replace || swap.Device.Credentials != loa.CredentialsRevoked || swap.Broker == "" {
		t.Errorf("swap answer %s", r.body)
	}
	wantError(t, e.do("POST", "/api/v1/devices/dev-a1/replace", e.techA, map[string]string{"claim_code": protocol.NewClaimCode()}),
		http.StatusConflict, loa.ECONFLICT, "cancel")

	// Claims of another scope are not found; one's own is cancelled.
	bCode := protocol.NewClaimCode()
	r = e.do("POST", "/api/v1/devices/claims", e.admin, map[string]any{"claim_code": bCode, "area_id": "b-1"})
	want(t, r, http.StatusCreated)
	var bClaim claimAnswer
	r.json(t, &bClaim)
	if bClaim.Device.ID == "" {
		t.Fatalf("no generated device id: %s", r.body)
	}
	wantError(t, e.do("POST", "/api/v1/devices/claims/"+bClaim.Claim.ID+"/cancel", e.techA, nil), http.StatusNotFound, loa.ENOTFOUND)
	want(t, e.do("POST", "/api/v1/devices/claims/"+bClaim.Claim.ID+"/cancel", e.admin, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/devices/"+bClaim.Device.ID, e.admin, nil), http.StatusNotFound)
	wantError(t, e.poll(bCode), http.StatusNotFound, loa.ENOTFOUND)

	r = e.poll(code)
	want(t, r, http.StatusOK)
	var ans protocol.EnrolResponse
	r.json(t, &ans)
	if ans.DeviceID != "dev-a1" {
		t.Errorf("the new unit enrolled as %q, want dev-a1", ans.DeviceID)
	}
	acts := e.auditActions()
	for _, w := range []string{"device.replace dev-a1", "device.claim " + bClaim.Device.ID, "device.claim.cancel " + bClaim.Device.ID, "device.enrol dev-a1"} {
		if !containsAny(joinLines(acts), w) {
			t.Errorf("audit %v lacks %q", acts, w)
		}
	}
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }
