package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// deviceRequest is the body of POST /api/v1/devices.
type deviceRequest struct {
	ID     string  `json:"id"`
	AreaID string  `json:"area_id"`
	Name   string  `json:"name"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	MSISDN string  `json:"msisdn"`
}

// deviceView is a device with its live state, null when the controller
// has heard nothing from it, and the kinds of its active alarms.
type deviceView struct {
	*loa.Device
	State    *loa.DeviceState `json:"state"`
	Problems []string         `json:"problems,omitempty"`
}

// deviceCreated is the answer to POST /api/v1/devices. The password is the
// device's MQTT password, shown this once.
type deviceCreated struct {
	Device   *loa.Device `json:"device"`
	Password string      `json:"password"`
}

func (s *Server) view(d *loa.Device) deviceView {
	v := deviceView{Device: d}
	if s.Presence != nil {
		if st, ok := s.Presence.DeviceState(d.ID); ok {
			v.State = &st
		}
	}
	return v
}

// listDevices answers the devices whose area is within the caller's
// scope, in id order, filtered by ?area= (subtree),
// ?state=online|offline|unknown, ?problem=<alarm kind>|any (devices with
// such an active alarm) and ?q= (id or name), one page of ?limit= after
// ?cursor= (device_page.go).
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Devices == nil {
		return errUnavailable("device")
	}
	f, err := parseDeviceFilter(r, c)
	if err != nil {
		return err
	}
	page, err := parseDevicePage(r)
	if err != nil {
		return err
	}
	problems, err := s.problems(r, "")
	if err != nil {
		return err
	}
	if c.scoped() { // one read of the subtree, not a path per device
		if _, err := c.areaList(); err != nil {
			return err
		}
	}
	list, err := s.Devices.Devices(r.Context())
	if err != nil {
		return err
	}
	byID := func(a, b *loa.Device) int { return strings.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(list, byID) { // the list may be shared: sort a copy
		list = slices.SortedFunc(slices.Values(list), byID)
	}
	out := make([]deviceView, 0, min(len(list), max(page.limit, 1)))
	total, more := 0, false
	for _, d := range list {
		if !page.match(d) {
			continue
		}
		ok, err := c.areaInScope(d.AreaID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		v := s.view(d)
		v.Problems = problems[d.ID]
		if !f.match(c, &v) {
			continue
		}
		total++
		switch {
		case d.ID <= page.cursor:
		case page.limit == 0 || len(out) < page.limit:
			out = append(out, v)
		default:
			more = true
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	if more {
		w.Header().Set("X-Next-Cursor", out[len(out)-1].ID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getDevice answers one device; a device outside the caller's scope is
// not found, so its existence does not leak.
func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Devices == nil {
		return errUnavailable("device")
	}
	id := r.PathValue("id")
	d, err := s.Devices.Device(r.Context(), id)
	if err != nil {
		return err
	}
	if ok, err := c.areaInScope(d.AreaID); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "device %q not found", id)
	}
	v := s.view(d)
	problems, err := s.problems(r, d.ID)
	if err != nil {
		return err
	}
	v.Problems = problems[d.ID]
	writeJSON(w, http.StatusOK, v)
	return nil
}

// createDevice registers a device in an area within the caller's scope.
func (s *Server) createDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	var req deviceRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	d := &loa.Device{ID: req.ID, AreaID: req.AreaID, Name: req.Name, Lat: req.Lat, Lon: req.Lon, MSISDN: req.MSISDN}
	if err := d.Validate(); err != nil {
		return err
	}
	if reservedDeviceIDs[d.ID] {
		return loa.Errorf(loa.EINVALID, "id: %q is reserved", d.ID)
	}
	if ok, err := c.areaInScope(d.AreaID); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", d.AreaID, c.tok.AreaID)
	}
	if s.Devices == nil {
		return errUnavailable("device")
	}
	password, err := s.Devices.CreateDevice(r.Context(), d)
	if err != nil {
		return err
	}
	c.audit("device.create", d.ID, "area "+d.AreaID)
	writeJSON(w, http.StatusCreated, deviceCreated{Device: d, Password: password})
	return nil
}

// deviceOffsetter is the store's capability to set a receiver's delay
// offset.
type deviceOffsetter interface {
	SetDeviceOffset(ctx context.Context, id string, offsetMs int) (*loa.Device, error)
}

// devicePatch is the body of PATCH /api/v1/devices/{id}: what a
// technician may change of a device in place.
type devicePatch struct {
	OffsetMs *int    `json:"offset_ms"`
	MSISDN   *string `json:"msisdn"` // its modem's number; "" removes it
}

// deviceMSISDNSetter is the store's capability to set a receiver's modem
// number.
type deviceMSISDNSetter interface {
	SetDeviceMSISDN(ctx context.Context, id, msisdn string) (*loa.Device, error)
}

// patchDevice sets a device's delay offset (play.offset_ms of its next
// plays; receivers announcing timeline apply it). The offset is checked
// against the bounds and the station's playout delay before anything
// changes. Audited.
func (s *Server) patchDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	var req devicePatch
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.OffsetMs == nil && req.MSISDN == nil {
		return loa.Errorf(loa.EINVALID, "body: nothing to change (offset_ms, msisdn)")
	}
	delay := s.Delay
	if delay == 0 {
		delay = 200 * time.Millisecond
	}
	if req.OffsetMs != nil {
		if err := loa.ValidateOffset(*req.OffsetMs, delay); err != nil {
			return err
		}
	}
	if req.MSISDN != nil {
		if err := loa.ValidateMSISDN(*req.MSISDN); err != nil {
			return err
		}
	}
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	set, ok := s.Devices.(deviceOffsetter)
	setN, okN := s.Devices.(deviceMSISDNSetter)
	if !ok || (req.MSISDN != nil && !okN) {
		return errUnavailable("device settings")
	}
	if req.OffsetMs != nil {
		was := d.OffsetMs
		if d, err = set.SetDeviceOffset(r.Context(), d.ID, *req.OffsetMs); err != nil {
			return err
		}
		c.audit("device.update", d.ID, fmt.Sprintf("offset_ms %d → %d", was, d.OffsetMs))
	}
	if req.MSISDN != nil {
		was := d.MSISDN
		if d, err = setN.SetDeviceMSISDN(r.Context(), d.ID, *req.MSISDN); err != nil {
			return err
		}
		c.audit("device.update", d.ID, fmt.Sprintf("msisdn %q → %q", was, d.MSISDN))
	}
	v := s.view(d)
	problems, err := s.problems(r, d.ID)
	if err != nil {
		return err
	}
	v.Problems = problems[d.ID]
	writeJSON(w, http.StatusOK, v)
	return nil
}

// deviceDecommissioner is the store's capability to take a device out of
// service: credentials revoked, out of the active list (so of target
// resolution), its record and history kept.
type deviceDecommissioner interface {
	DecommissionDevice(ctx context.Context, id string) (*loa.Device, error)
}

// decommissionDevice takes a device in the caller's scope out of service
// and, through the credential service, drops its live connection. It
// answers the device (with decommissioned_at) and the broker note, as a
// credentials change does.
func (s *Server) decommissionDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	dec, ok := s.Devices.(deviceDecommissioner)
	if !ok {
		return errUnavailable("device decommissioning")
	}
	if d, err = dec.DecommissionDevice(r.Context(), d.ID); err != nil {
		return err
	}
	enforced := false
	if s.Creds != nil { // the store has revoked; this drops the live connection
		if enforced, err = s.Creds.RevokeCredentials(r.Context(), d.ID); err != nil {
			return err
		}
	}
	c.audit("device.decommission", d.ID, "area "+d.AreaID+"; "+brokerNote(enforced))
	writeJSON(w, http.StatusOK, credentialsAnswer{Device: s.view(d), Broker: brokerNote(enforced)})
	return nil
}

// inService refuses to act on a decommissioned device.
func inService(d *loa.Device) error {
	if d.Decommissioned() {
		return loa.Errorf(loa.ECONFLICT, "device %q was decommissioned at %s", d.ID, d.DecommissionedAt.Format(time.RFC3339))
	}
	return nil
}
