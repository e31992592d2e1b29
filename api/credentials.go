package api

import (
	"context"
	"net/http"
)

// CredentialService rotates and revokes a device's MQTT credentials and
// has the broker act on the change. cmd/loa implements it over the store
// and the embedded broker.
type CredentialService interface {
	// RotateCredentials issues a new password (shown once) and drops the
	// device's live connection. enforced is false with an external broker,
	// which the controller can neither update nor disconnect from.
	RotateCredentials(ctx context.Context, deviceID string) (password string, enforced bool, err error)
	// RevokeCredentials leaves the device registered without a working
	// password and drops its live connection (when enforced).
	RevokeCredentials(ctx context.Context, deviceID string) (enforced bool, err error)
}

// Broker notes in credential answers.
const (
	brokerEnforced = "embedded: the old password is refused from now on and the device's connection was dropped"
	brokerExternal = "external: the controller cannot change or disconnect anything on an external broker; " +
		"update the broker's password file and ACL for this device, then make the broker drop its connection"
)

// credentialsAnswer is the answer to a rotation (with the new password,
// shown this once) or to a revocation on an external broker.
type credentialsAnswer struct {
	Device   deviceView `json:"device"`
	Password string     `json:"password,omitempty"`
	Broker   string     `json:"broker"`
}

func brokerNote(enforced bool) string {
	if enforced {
		return brokerEnforced
	}
	return brokerExternal
}

// rotateCredentials issues a device in the caller's scope a new MQTT
// password; a revoked device becomes active again with it.
func (s *Server) rotateCredentials(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := inService(d); err != nil {
		return err
	}
	if s.Creds == nil {
		return errUnavailable("credential")
	}
	pw, enforced, err := s.Creds.RotateCredentials(r.Context(), d.ID)
	if err != nil {
		return err
	}
	c.audit("device.credentials.rotate", d.ID, brokerNote(enforced))
	if d, err = s.Devices.Device(r.Context(), d.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credentialsAnswer{Device: s.view(d), Password: pw, Broker: brokerNote(enforced)})
	return nil
}

// revokeCredentials leaves a device in the caller's scope registered but
// unable to connect: 204, or 200 with a note when the broker is external
// and the revocation must be finished there.
func (s *Server) revokeCredentials(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.deviceInScope(r, c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.Creds == nil {
		return errUnavailable("credential")
	}
	enforced, err := s.Creds.RevokeCredentials(r.Context(), d.ID)
	if err != nil {
		return err
	}
	c.audit("device.credentials.revoke", d.ID, brokerNote(enforced))
	if enforced {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if d, err = s.Devices.Device(r.Context(), d.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credentialsAnswer{Device: s.view(d), Broker: brokerNote(enforced)})
	return nil
}
