package api

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// ClaimService binds receivers' claim codes to devices: a new box into an
// area, or a new box in place of a dead unit (whose credentials it
// revokes at once). station.Enrolment implements it.
type ClaimService interface {
	ClaimCode(ctx context.Context, code string, d *loa.Device, by string) (*loa.Claim, error)
	// ReplaceDevice answers enforced false with an external broker, which
	// the controller cannot make drop the old unit.
	ReplaceDevice(ctx context.Context, deviceID, code, by string) (c *loa.Claim, enforced bool, err error)
	Claims(ctx context.Context) ([]*loa.Claim, error)
	ClaimByID(ctx context.Context, id string) (*loa.Claim, error)
	CancelClaim(ctx context.Context, id string) (*loa.Claim, error)
}

// Enroller answers a box polling with its claim code: ENOTFOUND until the
// code is claimed, the signed credentials once, then EGONE.
type Enroller interface {
	Enrol(ctx context.Context, code string) (*protocol.EnrolResponse, error)
}

// DefaultEnrolRetryAfter is the Retry-After of "not claimed yet" when
// Server.EnrolRetryAfter is zero.
const DefaultEnrolRetryAfter = 30 * time.Second

// Enrolment polls per claim code: a burst of enrolBurst, then one per
// enrolRefill. A box that follows Retry-After never meets the limit.
const (
	enrolBurst    = 5
	enrolRefill   = 12 * time.Second
	enrolMaxCodes = 10000 // codes the limiter remembers; then it forgets the fullest
)

// claimRequest is the body of POST /api/v1/devices/claims.
type claimRequest struct {
	ClaimCode string  `json:"claim_code"`
	DeviceID  string  `json:"device_id"`
	AreaID    string  `json:"area_id"`
	Name      string  `json:"name"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
}

// replaceRequest is the body of POST /api/v1/devices/{id}/replace.
type replaceRequest struct {
	ClaimCode string `json:"claim_code"`
}

// claimView is a claim with its state.
type claimView struct {
	*loa.Claim
	State string `json:"state"` // pending | enrolled
}

func viewClaim(c *loa.Claim) claimView {
	v := claimView{Claim: c, State: "pending"}
	if c.Enrolled() {
		v.State = "enrolled"
	}
	return v
}

// claimAnswer is the answer to a claim or a swap.
type claimAnswer struct {
	Claim  claimView  `json:"claim"`
	Device deviceView `json:"device"`
	Broker string     `json:"broker,omitempty"` // swaps: what happened to the old unit
}

// reservedDeviceIDs cannot name a device: the routes of claims and
// positions shadow them.
var reservedDeviceIDs = map[string]bool{"claims": true, "positions": true}

// claimDevice claims a box's code for a new device in an area in scope.
func (s *Server) claimDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	var req claimRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if s.Claims == nil {
		return errUnavailable("enrolment")
	}
	if reservedDeviceIDs[req.DeviceID] {
		return loa.Errorf(loa.EINVALID, "device_id: %q is reserved", req.DeviceID)
	}
	d := &loa.Device{ID: req.DeviceID, AreaID: req.AreaID, Name: req.Name, Lat: req.Lat, Lon: req.Lon}
	probe := *d
	if probe.ID == "" {
		probe.ID = "x" // the service names it
	}
	if err := probe.Validate(); err != nil {
		return prefixDeviceID(err)
	}
	if ok, err := c.areaInScope(d.AreaID); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", d.AreaID, c.tok.AreaID)
	}
	cl, err := s.Claims.ClaimCode(r.Context(), req.ClaimCode, d, c.tok.ID)
	if err != nil {
		return prefixDeviceID(err)
	}
	c.audit("device.claim", d.ID, "claim "+cl.ID+", area "+d.AreaID)
	writeJSON(w, http.StatusCreated, claimAnswer{Claim: viewClaim(cl), Device: s.view(d)})
	return nil
}

// prefixDeviceID names the request's field in a device validation error.
func prefixDeviceID(err error) error {
	if msg := loa.ErrorMessage(err); loa.ErrorCode(err) == loa.EINVALID && strings.HasPrefix(msg, "id: ") {
		return loa.Errorf(loa.EINVALID, "device_%s", msg)
	}
	return err
}

// replaceDevice swaps a dead unit: a new box's code is claimed for the
// device, whose old credentials stop working now.
func (s *Server) replaceDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	var req replaceRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := inService(d); err != nil {
		return err
	}
	if s.Claims == nil {
		return errUnavailable("enrolment")
	}
	cl, enforced, err := s.Claims.ReplaceDevice(r.Context(), d.ID, req.ClaimCode, c.tok.ID)
	if err != nil {
		return err
	}
	c.audit("device.replace", d.ID, "claim "+cl.ID+"; old unit revoked; "+brokerNote(enforced))
	if d, err = s.Devices.Device(r.Context(), d.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, claimAnswer{Claim: viewClaim(cl), Device: s.view(d), Broker: brokerNote(enforced)})
	return nil
}

// listClaims answers the claims of areas in the caller's scope, newest
// first, filtered by ?state=pending|enrolled.
func (s *Server) listClaims(w http.ResponseWriter, r *http.Request, c *call) error {
	state := r.URL.Query().Get("state")
	if state != "" && state != "pending" && state != "enrolled" {
		return loa.Errorf(loa.EINVALID, "state: %q; use pending or enrolled", state)
	}
	if s.Claims == nil {
		return errUnavailable("enrolment")
	}
	list, err := s.Claims.Claims(r.Context())
	if err != nil {
		return err
	}
	out := make([]claimView, 0, len(list))
	for _, cl := range list {
		if ok, err := c.areaInScope(cl.AreaID); err != nil {
			return err
		} else if !ok {
			continue
		}
		if v := viewClaim(cl); state == "" || v.State == state {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelClaim deletes a claim in the caller's scope: pending, its box
// gets nothing (and a device it registered is removed); enrolled, it is
// forgotten so the code may be claimed again.
func (s *Server) cancelClaim(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Claims == nil {
		return errUnavailable("enrolment")
	}
	id := r.PathValue("id")
	cl, err := s.Claims.ClaimByID(r.Context(), id)
	if err != nil {
		return err
	}
	if ok, err := c.areaInScope(cl.AreaID); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "claim %q not found", id)
	}
	if cl, err = s.Claims.CancelClaim(r.Context(), id); err != nil {
		return err
	}
	c.audit("device.claim.cancel", cl.DeviceID, "claim "+cl.ID+", "+viewClaim(cl).State)
	writeJSON(w, http.StatusOK, viewClaim(cl))
	return nil
}

// enrol answers a box's poll (no token: the claim code is the secret).
// Not claimed yet, and never claimed, are the same 404 with Retry-After;
// the credentials come once, then 410. Polls are limited per code, never
// per address: a commune's boxes share one carrier-NAT address.
func (s *Server) enrol(limiter *enrolLimiter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.serveEnrol(w, r, limiter); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) serveEnrol(w http.ResponseWriter, r *http.Request, limiter *enrolLimiter) error {
	var req protocol.EnrolRequest
	if err := decodeJSON(io.LimitReader(r.Body, 4<<10), &req); err != nil {
		return err
	}
	code, err := protocol.NormalizeClaimCode(req.ClaimCode)
	if err != nil {
		return loa.Errorf(loa.EINVALID, "claim_code: malformed; want %d characters of A–Z and 2–7", protocol.ClaimCodeLen)
	}
	if wait := limiter.take(protocol.ClaimCodeHash(code)); wait > 0 {
		w.Header().Set("Retry-After", retryAfter(wait))
		return loa.Errorf(loa.ERATELIMIT, "too many enrolment requests for this code; retry after %s", retryAfter(wait)+"s")
	}
	if s.Enrol == nil {
		return errUnavailable("enrolment")
	}
	ans, err := s.Enrol.Enrol(r.Context(), code)
	switch loa.ErrorCode(err) {
	case "":
	case loa.ENOTFOUND:
		// One answer for every code not claimed: a guess learns nothing.
		wait := s.EnrolRetryAfter
		if wait <= 0 {
			wait = DefaultEnrolRetryAfter
		}
		w.Header().Set("Retry-After", retryAfter(wait))
		return loa.Errorf(loa.ENOTFOUND, "not claimed yet; retry later")
	default:
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// retryAfter is d in whole seconds, at least 1, for a Retry-After header.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// enrolLimiter is a token bucket per claim code hash.
type enrolLimiter struct {
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*enrolBucket
}

type enrolBucket struct {
	tokens float64
	at     time.Time
}

func newEnrolLimiter(now func() time.Time) *enrolLimiter {
	if now == nil {
		now = time.Now
	}
	return &enrolLimiter{now: now, buckets: map[string]*enrolBucket{}}
}

// take spends one token of key's bucket and returns 0, or how long until
// one is there.
func (l *enrolLimiter) take(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= enrolMaxCodes {
			l.forget(now)
		}
		b = &enrolBucket{tokens: enrolBurst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(enrolBurst, b.tokens+float64(now.Sub(b.at))/float64(enrolRefill))
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(enrolRefill))
}

// forget drops the buckets that have refilled, or half of them if none
// has: forgetting a code only gives it a fresh burst, so a flood of
// made-up codes cannot lock a genuine box out.
func (l *enrolLimiter) forget(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.at) >= enrolBurst*enrolRefill {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < enrolMaxCodes/2 {
			break
		}
		delete(l.buckets, k)
	}
}
