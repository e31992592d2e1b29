package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// alarmAcker is the alarm service's capability to acknowledge an alarm
// (devices.Alarms implements it).
type alarmAcker interface {
	AcknowledgeAlarm(ctx context.Context, id, by, note string) (loa.Alarm, error)
}

// ackAlarm answers POST /api/v1/alarms/{id}/ack {note}: the active alarm,
// in the caller's scope, marked as seen by the caller with the note. It
// stays active until its condition clears. Audited.
func (s *Server) ackAlarm(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	note := strings.TrimSpace(req.Note)
	if len(note) > loa.MaxAlarmNote || strings.ContainsAny(note, "\x00\r\n") {
		return loa.Errorf(loa.EINVALID, "note: at most %d bytes on one line", loa.MaxAlarmNote)
	}
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	if s.Alarms == nil {
		return errUnavailable("alarm")
	}
	acker, ok := s.Alarms.(alarmAcker)
	if !ok {
		return errUnavailable("alarm acknowledgement")
	}
	// Only an alarm the caller may see: another commune's is not found.
	list, err := s.Alarms.Alarms(r.Context(), loa.AlarmFilter{})
	if err != nil {
		return err
	}
	found := false
	for i := range list {
		if list[i].ID == id {
			found = alarmVisible(c, &list[i])
			break
		}
	}
	if !found {
		return loa.Errorf(loa.ENOTFOUND, "alarm %q not found", id)
	}
	al, err := acker.AcknowledgeAlarm(r.Context(), id, c.tok.ID, note)
	if err != nil {
		return err
	}
	c.audit("alarm.ack", id, al.Kind+" "+al.Device+": "+note)
	writeJSON(w, http.StatusOK, al)
	return nil
}
