package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// DeviceAuthenticator checks a device's MQTT credentials, which are also
// its credentials for downloading firmware (store.DB implements it).
type DeviceAuthenticator interface {
	CheckDeviceCredentials(ctx context.Context, id, password string) (bool, error)
}

// maxFirmwareField bounds the version, sig and name form fields.
const maxFirmwareField = 200

// uploadFirmware streams the "file" part of a multipart/form-data body
// into FirmwareService.UploadFirmware. The "version" and "sig" fields (and
// an optional "name") must come before "file".
func (s *Server) uploadFirmware(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Firmware == nil {
		return errUnavailable("firmware")
	}
	form := uploadForm{
		limit:  int64(protocol.MaxFirmwareSize) + 1<<20, // the image and the form around it
		fields: []string{"version", "sig", "name"}, maxField: maxFirmwareField,
		expect: `"version", "sig" and "file" fields`, after: `, after "version" and "sig"`,
	}
	return readUpload(w, r, form, func(fields map[string]string, part *multipart.Part) error {
		if err := loa.ValidFirmwareVersion("version", fields["version"]); err != nil {
			return err
		}
		if fields["sig"] == "" {
			return loa.Errorf(loa.EINVALID, `sig: required before "file": the base64 signature from "loa firmware sign"`)
		}
		name := fields["name"]
		if name == "" {
			name = strings.TrimSpace(part.FileName())
		}
		if loa.ValidateName("name", name, false) != nil {
			name = "" // the file name a browser sent is only a hint
		}
		img, err := s.Firmware.UploadFirmware(r.Context(), fields["version"], fields["sig"], name, part, c.tok.ID)
		if err != nil {
			return err
		}
		c.audit("firmware.upload", img.ID, "version "+img.Version+", sha256 "+img.SHA256)
		writeJSON(w, http.StatusCreated, img)
		return nil
	})
}

func (s *Server) listFirmware(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Firmware == nil {
		return errUnavailable("firmware")
	}
	list, err := s.Firmware.FirmwareImages(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []*loa.FirmwareImage{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) getFirmware(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Firmware == nil {
		return errUnavailable("firmware")
	}
	img, err := s.Firmware.FirmwareImage(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, img)
	return nil
}

// rolloutRequest is the body of POST /api/v1/rollouts.
type rolloutRequest struct {
	ImageID       string      `json:"image_id"`
	Targets       loa.Targets `json:"targets"`
	Waves         []int       `json:"waves"`           // cumulative percent; default 1,10,50,100
	FailThreshold *float64    `json:"fail_threshold"`  // 0..1; default 0.1
	WaveTimeout   string      `json:"wave_timeout"`    // a Go duration; default 30m
	WaveTimeoutNs *int64      `json:"wave_timeout_ns"` // or nanoseconds, as answers also carry it
}

// parseRolloutRequest decodes and validates a rollout request; every
// failure is EINVALID naming the field.
func parseRolloutRequest(body io.Reader) (*loa.Rollout, error) {
	var req rolloutRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	ro := &loa.Rollout{ImageID: req.ImageID, Targets: req.Targets, Waves: req.Waves}
	if d, given, err := durationIn("wave_timeout", "wave_timeout_ns", req.WaveTimeout, req.WaveTimeoutNs, "30m"); err != nil {
		return nil, err
	} else if given {
		if d <= 0 {
			return nil, loa.Errorf(loa.EINVALID, "wave_timeout: %s is not a positive duration like \"30m\"", strconv.Quote(d.String()))
		}
		ro.WaveTimeout = d
	}
	ro.Normalize()
	if req.FailThreshold != nil { // after Normalize: 0 (pause on the first failure) is no default
		ro.FailThreshold = *req.FailThreshold
	}
	if err := ro.Validate(); err != nil {
		return nil, err
	}
	return ro, nil
}

// rolloutView is a rollout with its per-wave totals.
type rolloutView struct {
	*loa.Rollout
	WaveTimeout string           `json:"wave_timeout"` // as requests send it; wave_timeout_ns as before
	Totals      []loa.WaveTotals `json:"totals"`
}

func viewOf(ro *loa.Rollout, withDevices bool) rolloutView {
	v := rolloutView{Rollout: ro, WaveTimeout: ro.WaveTimeout.String(), Totals: ro.Totals()}
	if !withDevices {
		c := *ro
		c.Devices = []loa.RolloutDevice{}
		v.Rollout = &c
	}
	return v
}

// rollout returns rollout id if its every target is in the caller's
// scope, else ENOTFOUND.
func (s *Server) rollout(c *call, id string) (*loa.Rollout, error) {
	if s.Firmware == nil {
		return nil, errUnavailable("firmware")
	}
	ro, err := s.Firmware.Rollout(c.ctx, id)
	if err != nil {
		return nil, err
	}
	if out, err := c.targetsInScope(ro.Targets); err != nil {
		return nil, err
	} else if out != "" {
		return nil, loa.Errorf(loa.ENOTFOUND, "rollout %q not found", id)
	}
	return ro, nil
}

// listRollouts answers the rollouts in scope, newest first, with totals
// but without the per-device list.
func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Firmware == nil {
		return errUnavailable("firmware")
	}
	list, err := s.Firmware.Rollouts(r.Context())
	if err != nil {
		return err
	}
	out := make([]rolloutView, 0, len(list))
	for _, ro := range list {
		if o, err := c.targetsInScope(ro.Targets); err != nil {
			return err
		} else if o == "" {
			out = append(out, viewOf(ro, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, c *call) error {
	ro, err := s.rollout(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(ro, true))
	return nil
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, c *call) error {
	ro, err := parseRolloutRequest(r.Body)
	if err != nil {
		return err
	}
	if err := c.targetsAllowed(ro.Targets); err != nil {
		return err
	}
	if s.Firmware == nil {
		return errUnavailable("firmware")
	}
	ro.CreatedBy = c.tok.ID
	if err := s.Firmware.StartRollout(r.Context(), ro); err != nil {
		return err
	}
	c.audit("rollout.start", ro.ID, fmt.Sprintf("image %s (version %s) to %d devices, waves %v", ro.ImageID, ro.Version, len(ro.Devices), ro.Waves))
	writeJSON(w, http.StatusCreated, viewOf(ro, true))
	return nil
}

// changeRollout serves pause, resume and abort.
func (s *Server) changeRollout(action string) handler {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		id := r.PathValue("id")
		if _, err := s.rollout(c, id); err != nil {
			return err
		}
		// The body is optional: nothing, or {"reason": "..."}.
		b, err := readBody(r.Body, maxJSONBody)
		if err != nil {
			return err
		}
		var req struct {
			Reason string `json:"reason"`
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if err := decodeJSON(bytes.NewReader(b), &req); err != nil {
				return err
			}
		}
		if len(req.Reason) > 200 || strings.ContainsAny(req.Reason, "\x00\r\n") {
			return loa.Errorf(loa.EINVALID, "reason: at most 200 bytes on one line")
		}
		reason := strings.TrimSpace(req.Reason)
		var ro *loa.Rollout
		switch action {
		case "pause":
			ro, err = s.Firmware.PauseRollout(r.Context(), id, reason)
		case "resume":
			ro, err = s.Firmware.ResumeRollout(r.Context(), id)
		default:
			ro, err = s.Firmware.AbortRollout(r.Context(), id, reason)
		}
		if err != nil {
			return err
		}
		c.audit("rollout."+action, id, reason)
		writeJSON(w, http.StatusOK, viewOf(ro, true))
		return nil
	}
}

// downloadFirmware serves an image to a receiver that authenticates with
// its device id and MQTT password (HTTP Basic). http.ServeContent answers
// Range requests, so a receiver resumes a dropped download; the ETag is
// the image's SHA-256, so If-Range never splices two images.
func (s *Server) downloadFirmware(w http.ResponseWriter, r *http.Request) {
	id, pass, ok := r.BasicAuth()
	if !ok || s.Receivers == nil || loa.ValidateID("device", id) != nil || len(pass) > maxSecret {
		s.denyDevice(w, r)
		return
	}
	good, err := s.Receivers.CheckDeviceCredentials(r.Context(), id, pass)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !good {
		s.denyDevice(w, r)
		return
	}
	if s.Firmware == nil {
		s.writeError(w, r, errUnavailable("firmware"))
		return
	}
	img, f, err := s.Firmware.OpenFirmware(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	if sw, ok := w.(*statusWriter); ok {
		sw.actor = "device:" + id
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", strconv.Quote(img.SHA256))
	w.Header().Set("Cache-Control", "no-store")
	// A download on a weak link may take long: bounded by progress, not time.
	http.ServeContent(w, r, img.ID+".img", img.CreatedAt, progressReader{f, http.NewResponseController(w), r.Context()})
}

func (s *Server) denyDevice(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Basic realm="loa firmware", charset="UTF-8"`)
	s.writeError(w, r, loa.Errorf(loa.EUNAUTHORIZED, "firmware downloads need the device id and its MQTT password (HTTP Basic)"))
}
