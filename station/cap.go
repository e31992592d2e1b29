package station

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// CAPStore is what CAP ingest reads: the areas and devices its polygons
// and codes resolve against, and the alerts by the CAP message that made
// them. The store reserves that index atomically when an alert is
// created, so a duplicate that races past the check here is still
// refused.
type CAPStore interface {
	Areas(ctx context.Context) ([]*loa.Area, error)
	Devices(ctx context.Context) ([]*loa.Device, error)
	AlertByCAP(ctx context.Context, sender, identifier string) (*loa.Alert, error)
}

// CAP takes CAP 1.2 messages: Alert and Update send an alert (the update
// then cancels what it replaces), Cancel cancels the alerts its references
// name, and System, Draft, Ack and Error are checked and not sounded. Each
// step is checked against the caller's authority, as an alert sent by hand
// would be.
type CAP struct {
	db     CAPStore
	alerts loa.AlertService
	media  loa.MediaService // imports embedded audio; nil: refused
	now    func() time.Time
	logger *slog.Logger
}

// maxMediaName bounds the name of a media item made from embedded audio.
const maxMediaName = 200

// NewCAP returns the CAP ingest sending through alerts and importing
// embedded audio through media; now (nil: time.Now) is the clock messages
// are mapped and validated against.
func NewCAP(db CAPStore, alerts loa.AlertService, media loa.MediaService, now func() time.Time, logger *slog.Logger) *CAP {
	if now == nil {
		now = time.Now
	}
	return &CAP{db: db, alerts: alerts, media: media, now: now, logger: logger}
}

// IngestCAP acts on a parsed CAP message for by. Any refusal (a duplicate,
// a level or target beyond by's authority, invalid content) sends nothing
// and leaves no media behind.
func (s *CAP) IngestCAP(ctx context.Context, msg *cap.Message, by loa.Caller) (loa.CAPResult, error) {
	// A caller sends as the senders it was granted only: identifiers are
	// reserved per sender, so no one can take another's first.
	if err := by.MaySendCAPAs(msg.Sender); err != nil {
		return loa.CAPResult{}, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return loa.CAPResult{}, err
	}
	devices, err := s.devices(ctx, by)
	if err != nil {
		return loa.CAPResult{}, err
	}
	mp, err := cap.Map(msg, areas, devices, s.now(), cap.Options{})
	if err != nil {
		return loa.CAPResult{}, err
	}
	switch {
	case mp.Silent != "":
		by.Audit("alert.cap", msg.Sender+","+msg.Identifier, msg.Status+"/"+msg.MsgType+": not sounded")
		return loa.CAPResult{Silent: mp.Silent}, nil
	case mp.Cancel != nil:
		a, err := s.cancel(ctx, by, msg, mp.Cancel)
		return loa.CAPResult{Alert: a, Cancel: true}, err
	}

	if prev, err := s.db.AlertByCAP(ctx, msg.Sender, msg.Identifier); err == nil {
		// Name the alert only to a caller who may see it.
		which := ""
		if ok, err := by.TargetsVisible(prev.Targets); err != nil {
			return loa.CAPResult{}, err
		} else if ok {
			which = " (alert " + prev.ID + ")"
		}
		return loa.CAPResult{}, loa.Errorf(loa.ECONFLICT, "identifier: sender %q already sent %q%s; a CAP message is taken once", msg.Sender, msg.Identifier, which)
	} else if loa.ErrorCode(err) != loa.ENOTFOUND {
		return loa.CAPResult{}, err
	}
	a := mp.Alert
	if err := by.MaySend(a); err != nil {
		return loa.CAPResult{}, err
	}
	// Every check the alert service does not repeat is done: only now is
	// embedded audio imported, so refused messages leave no media behind.
	probe := *a
	if mp.Audio != nil {
		probe.Content.MediaID = "pending-import"
	}
	if err := probe.Validate(s.now()); err != nil {
		return loa.CAPResult{}, err
	}
	if mp.Audio != nil {
		if s.media == nil {
			return loa.CAPResult{}, loa.Errorf(loa.EUNAVAILABLE, "the media service is not configured")
		}
		m, err := s.media.ImportMedia(ctx, capMediaName(msg, mp.Audio), bytes.NewReader(mp.Audio.Data), by.ID())
		if code := loa.ErrorCode(err); code != "" && code != loa.EINTERNAL {
			return loa.CAPResult{}, loa.Errorf(code, "info.resource (%s): %s", mp.Audio.MimeType, loa.ErrorMessage(err))
		} else if err != nil {
			return loa.CAPResult{}, fmt.Errorf("info.resource: import: %w", err)
		}
		a.Content.MediaID = m.ID
		by.Audit("media.upload", m.ID, m.Name)
	}
	a.CreatedBy = by.ID()
	if err := s.alerts.SendAlert(ctx, a); err != nil {
		return loa.CAPResult{}, err
	}
	by.Audit("alert.send", a.ID, fmt.Sprintf("CAP %s %s,%s: %s %q, %d receivers, targets %s",
		msg.MsgType, msg.Sender, msg.Identifier, a.Level, a.Title, len(a.Report), a.Targets))
	// The update is out; what it replaces stops. A reference that is
	// unknown here, or not the caller's to cancel, is left alone.
	for _, ref := range mp.Supersedes {
		if _, err := s.cancelOne(ctx, by, ref, fmt.Sprintf("superseded by CAP update %s,%s", msg.Sender, msg.Identifier)); err != nil {
			s.logger.Warn("CAP update: superseded alert not cancelled", "reference", ref.String(), "update", a.ID, "err", err)
		}
	}
	return loa.CAPResult{Alert: a}, nil
}

// devices lists the devices a CAP polygon or circle may reach: those in
// the caller's scope. A warning polygon drawn across a province border
// reaches a scoped caller's own receivers, not a 403.
func (s *CAP) devices(ctx context.Context, by loa.Caller) ([]*loa.Device, error) {
	all, err := s.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, d := range all {
		if ok, err := by.AreaInScope(d.AreaID); err != nil {
			return nil, err
		} else if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// cancel cancels every alert the references name that the caller may see,
// and returns the first. An alert that has already ended is left as it is
// (a repeated Cancel is not an error).
func (s *CAP) cancel(ctx context.Context, by loa.Caller, msg *cap.Message, refs []cap.Reference) (*loa.Alert, error) {
	reason := fmt.Sprintf("CAP Cancel %s,%s", msg.Sender, msg.Identifier)
	if msg.Note != "" {
		reason += ": " + truncate(msg.Note, 300)
	}
	var first *loa.Alert
	for _, ref := range refs {
		a, err := s.cancelOne(ctx, by, ref, reason)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = a
		}
	}
	if first == nil {
		names := make([]string, len(refs))
		for i, r := range refs {
			names[i] = r.String()
		}
		return nil, loa.Errorf(loa.ENOTFOUND, "references: no alert came from %s", strings.Join(names, " "))
	}
	return first, nil
}

// cancelOne cancels the alert of ref: nil, nil when there is none the
// caller may see.
func (s *CAP) cancelOne(ctx context.Context, by loa.Caller, ref cap.Reference, reason string) (*loa.Alert, error) {
	if by.MaySendCAPAs(ref.Sender) != nil {
		return nil, nil // another sender's message is not the caller's to cancel
	}
	a, err := s.db.AlertByCAP(ctx, ref.Sender, ref.Identifier)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if ok, err := by.TargetsVisible(a.Targets); err != nil {
		return nil, err
	} else if !ok {
		return nil, nil
	}
	if err := by.MaySend(a); err != nil {
		return nil, err
	}
	if !a.Final() {
		if err := s.alerts.CancelAlert(ctx, a.ID, reason); err != nil && loa.ErrorCode(err) != loa.ECONFLICT {
			return nil, err
		}
		by.Audit("alert.cancel", a.ID, reason)
	}
	return s.alerts.Alert(ctx, a.ID)
}

// capMediaName names the media item an embedded audio resource becomes.
func capMediaName(msg *cap.Message, au *cap.Audio) string {
	return truncate(loa.OneLine("CAP "+msg.Identifier+": "+au.Name), maxMediaName)
}

// truncate cuts s to at most n bytes at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
