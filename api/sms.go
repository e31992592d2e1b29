package api

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// SMSInbox takes the SMS the station's gateway received: receivers'
// replies to SMS triggers (contract v2, sms).
type SMSInbox interface {
	HandleReply(ctx context.Context, from, text string) error
}

// smsInbound is the body the gateway posts: the same shape as the SMS
// the controller gives it ({to, text}), from the other side.
type smsInbound struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// smsInbound takes one SMS from the gateway, authenticated by the
// station's gateway secret (Server.SMSSecret, as a bearer token): not a
// user's token, since a gateway is given nothing else. A reply that does
// not authenticate as its device's is 403 and changes nothing.
func (s *Server) smsInbound(w http.ResponseWriter, r *http.Request) {
	if err := s.serveSMSInbound(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) serveSMSInbound(w http.ResponseWriter, r *http.Request) error {
	if s.SMS == nil || s.SMSSecret == "" {
		return errUnavailable("SMS replies")
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.SMSSecret)) != 1 {
		return loa.Errorf(loa.EUNAUTHORIZED, "send Authorization: Bearer <the station's SMS gateway secret>")
	}
	var req smsInbound
	if err := decodeJSON(io.LimitReader(r.Body, 4<<10), &req); err != nil {
		return err
	}
	if req.From == "" || len(req.From) > 32 {
		return loa.Errorf(loa.EINVALID, "from: required, the sender's number")
	}
	if err := s.SMS.HandleReply(r.Context(), req.From, req.Text); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
