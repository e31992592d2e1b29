package station

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// NationalStore keeps the provinces and the national alerts (store.DB).
type NationalStore interface {
	PutProvince(ctx context.Context, p *loa.Province, create bool) error
	Province(ctx context.Context, id string) (*loa.Province, error)
	Provinces(ctx context.Context) ([]*loa.Province, error)
	DeleteProvince(ctx context.Context, id string) error
	PutNationalAlert(ctx context.Context, a *loa.NationalAlert) error
	NationalAlert(ctx context.Context, id string) (*loa.NationalAlert, error)
	NationalAlerts(ctx context.Context) ([]*loa.NationalAlert, error)
}

// NationalConfig configures National.
type NationalConfig struct {
	DB     NationalStore
	Sender string           // the national CAP sender of every push
	Cert   *tls.Certificate // the client certificate presented to provinces
	Now    func() time.Time
	// RetryMin and RetryMax bound the back-off between tries of a province
	// that could not be reached [2 s, 1 min]; PollEvery is how often a
	// delivered province's report is read while its alert runs [5 s].
	RetryMin, RetryMax, PollEvery time.Duration
	// Timeout bounds one request to a province [15 s].
	Timeout time.Duration
	Logger  *slog.Logger
}

// National is the national controller's role: it pushes alerts as CAP 1.2
// to every province controller over mutually authenticated TLS (the
// national client certificate, which each province binds to a token with
// the national sender among its cap_senders), retries a province it cannot
// reach with back-off until the alert expires, and reads each province's
// delivery report back with the same identity while the alert runs. Every
// change of a push is stored, so a restarted controller resumes.
type National struct {
	cfg  NationalConfig
	log  *slog.Logger
	mu   sync.Mutex // serialises changes of national alerts
	wake chan struct{}
}

// NewNational returns the national role; Run does the pushing.
func NewNational(cfg NationalConfig) *National {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 2 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Minute
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &National{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
}

// Identity is the sender and client certificate provinces bind.
func (n *National) Identity() loa.NationalIdentity {
	id := loa.NationalIdentity{Sender: n.cfg.Sender}
	if n.cfg.Cert != nil && len(n.cfg.Cert.Certificate) > 0 {
		der := n.cfg.Cert.Certificate[0]
		id.CertSHA256 = loa.CertSHA256(der)
		id.CertPEM = string(pemCert(der))
	}
	return id
}

// Province management: checked by the store (loa.Province.Validate).

func (n *National) Provinces(ctx context.Context) ([]*loa.Province, error) {
	return n.cfg.DB.Provinces(ctx)
}

func (n *National) Province(ctx context.Context, id string) (*loa.Province, error) {
	return n.cfg.DB.Province(ctx, id)
}

func (n *National) PutProvince(ctx context.Context, p *loa.Province, create bool) error {
	return n.cfg.DB.PutProvince(ctx, p, create)
}

func (n *National) DeleteProvince(ctx context.Context, id string) error {
	return n.cfg.DB.DeleteProvince(ctx, id)
}

func (n *National) NationalAlerts(ctx context.Context) ([]*loa.NationalAlert, error) {
	return n.cfg.DB.NationalAlerts(ctx)
}

func (n *National) NationalAlert(ctx context.Context, id string) (*loa.NationalAlert, error) {
	return n.cfg.DB.NationalAlert(ctx, id)
}

// SendNational records an alert for the provinces req names (every
// province when none) and starts pushing it.
func (n *National) SendNational(ctx context.Context, req loa.NationalRequest, by string) (*loa.NationalAlert, error) {
	now := n.cfg.Now()
	a := &loa.Alert{Title: req.Title, Level: req.Level, Content: loa.AlertContent{Text: req.Text, Tone: true},
		Targets: loa.Targets{Areas: []string{"national"}}, ExpiresAt: req.ExpiresAt, Test: req.Test}
	if req.Title == "" {
		return nil, loa.Errorf(loa.EINVALID, "title: required")
	}
	if req.Text == "" {
		return nil, loa.Errorf(loa.EINVALID, "text: required: what the provinces' speech engines read out")
	}
	if err := a.Validate(now); err != nil {
		return nil, err
	}
	provs, err := n.pick(ctx, req.Provinces)
	if err != nil {
		return nil, err
	}
	na := &loa.NationalAlert{Title: req.Title, Level: req.Level, Text: req.Text, Test: req.Test, ExpiresAt: req.ExpiresAt.UTC()}
	return n.start(ctx, na, provs, by)
}

// IngestNationalCAP takes a CAP message from the national warning source:
// the provinces whose code its geocodes name get it, re-sent under the
// national sender with each province's own area. A message that sounds
// nowhere (System, Draft, Ack, Error) answers silent and is not pushed.
func (n *National) IngestNationalCAP(ctx context.Context, msg *cap.Message, by string, may func(*loa.NationalAlert) error) (*loa.NationalAlert, string, error) {
	switch {
	case msg.Status == "System" || msg.Status == "Draft":
		return nil, "status " + msg.Status + " is not acted on; nothing is pushed to the provinces", nil
	case msg.MsgType == "Ack" || msg.MsgType == "Error":
		return nil, "msgType " + msg.MsgType + " answers a message; nothing is pushed to the provinces", nil
	case msg.MsgType == "Cancel":
		a, err := n.cancelFromSource(ctx, msg, by, may)
		return a, "", err
	}
	if len(msg.Info) == 0 {
		return nil, "", loa.Errorf(loa.EINVALID, "info: none: nothing to push")
	}
	now := n.cfg.Now()
	in := &msg.Info[0]
	for i := range msg.Info {
		if strings.HasPrefix(strings.ToLower(msg.Info[i].Language), "vi") {
			in = &msg.Info[i]
			break
		}
	}
	level := loa.AlertPriority
	if in.Urgency == "Immediate" && (in.Severity == "Extreme" || in.Severity == "Severe") {
		level = loa.AlertEmergency
	}
	expires := msg.SentAt.Add(time.Hour)
	if !in.ExpiresAt.IsZero() {
		expires = in.ExpiresAt
	}
	if !expires.After(now) {
		return nil, "", loa.Errorf(loa.EINVALID, "info.expires: %s has passed: the alert expired before it arrived", expires.Format(time.RFC3339))
	}
	if limit := now.Add(loa.MaxAlertExpiry); expires.After(limit) {
		expires = limit
	}
	codes := map[string]bool{}
	for _, inf := range msg.Info {
		for _, ar := range inf.Area {
			for _, g := range ar.Geocode {
				codes[g.Value] = true
			}
		}
	}
	all, err := n.cfg.DB.Provinces(ctx)
	if err != nil {
		return nil, "", err
	}
	var provs []*loa.Province
	var known []string
	for _, p := range all {
		known = append(known, p.Code)
		if codes[p.Code] {
			provs = append(provs, p)
		}
	}
	if len(provs) == 0 {
		return nil, "", loa.Errorf(loa.EINVALID, "info.area: no geocode names a registered province (codes %s): a national warning names the provinces it is for",
			strings.Join(known, " "))
	}
	title := strings.TrimSpace(in.Headline)
	if title == "" {
		title = strings.TrimSpace(in.Event)
	}
	na := &loa.NationalAlert{Title: truncate(loa.OneLine(title), loa.MaxAlertTitle), Level: level,
		Text:   truncate(strings.TrimSpace(in.Description), loa.MaxAlertText),
		Test:   msg.Status == "Exercise" || msg.Status == "Test",
		Source: msg.Sender + "," + msg.Identifier, SourceXML: string(msg.Raw), ExpiresAt: expires.UTC()}
	if may != nil {
		if err := may(na); err != nil {
			return nil, "", err
		}
	}
	a, err := n.start(ctx, na, provs, by)
	return a, "", err
}

// CancelNational cancels national alert id: a province that took it (or
// may have: a try went out) is sent a CAP Cancel, retried until expiry;
// one never tried is not. ECONFLICT if already cancelled; may checks the
// caller's authority over the alert first.
func (n *National) CancelNational(ctx context.Context, id, reason, by string, may func(*loa.NationalAlert) error) (*loa.NationalAlert, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, err := n.cfg.DB.NationalAlert(ctx, id)
	if err != nil {
		return nil, err
	}
	if may != nil {
		if err := may(a); err != nil {
			return nil, err
		}
	}
	if !a.CancelledAt.IsZero() {
		return nil, loa.Errorf(loa.ECONFLICT, "national alert %s was cancelled at %s", id, a.CancelledAt.Format(time.RFC3339))
	}
	now := n.cfg.Now().UTC()
	a.CancelledAt, a.CancelledBy, a.CancelReason = now, by, truncate(loa.OneLine(reason), 300)
	for i := range a.Provinces {
		p := &a.Provinces[i]
		tried := p.State == loa.PushDelivered || p.Attempts > 0 && p.State != loa.PushRefused
		if !p.Final() {
			p.State, p.NextAttempt = loa.PushCancelled, time.Time{}
		}
		if tried && now.Before(a.ExpiresAt) {
			p.CancelState, p.CancelNext = loa.PushPending, now
		}
	}
	if err := n.cfg.DB.PutNationalAlert(ctx, a); err != nil {
		return nil, err
	}
	n.log.Info("national alert cancelled", "id", id, "by", by, "reason", a.CancelReason)
	n.kick()
	return a, nil
}

// cancelFromSource cancels the national alerts the source's Cancel
// references (made from those messages); ENOTFOUND if none.
func (n *National) cancelFromSource(ctx context.Context, msg *cap.Message, by string, may func(*loa.NationalAlert) error) (*loa.NationalAlert, error) {
	all, err := n.cfg.DB.NationalAlerts(ctx)
	if err != nil {
		return nil, err
	}
	reason := "CAP Cancel " + msg.Sender + "," + msg.Identifier
	if msg.Note != "" {
		reason += ": " + msg.Note
	}
	var first *loa.NationalAlert
	for _, ref := range msg.Refs {
		for _, a := range all {
			if a.Source != ref.Sender+","+ref.Identifier || !a.CancelledAt.IsZero() {
				continue
			}
			c, err := n.CancelNational(ctx, a.ID, reason, by, may)
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = c
			}
		}
	}
	if first == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "references: no national alert came from %s", msg.References)
	}
	return first, nil
}

// pick returns the provinces of ids, or every province.
func (n *National) pick(ctx context.Context, ids []string) ([]*loa.Province, error) {
	all, err := n.cfg.DB.Provinces(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		if len(all) == 0 {
			return nil, loa.Errorf(loa.EINVALID, "provinces: none is registered; an admin adds them (POST /api/v1/national/provinces)")
		}
		return all, nil
	}
	var out []*loa.Province
	for i, id := range ids {
		j := slices.IndexFunc(all, func(p *loa.Province) bool { return p.ID == id })
		if j < 0 {
			return nil, loa.Errorf(loa.EINVALID, "provinces[%d]: no province %q", i, id)
		}
		if !slices.Contains(out, all[j]) {
			out = append(out, all[j])
		}
	}
	return out, nil
}

// start stores na with a pending push per province and wakes Run.
func (n *National) start(ctx context.Context, na *loa.NationalAlert, provs []*loa.Province, by string) (*loa.NationalAlert, error) {
	now := n.cfg.Now()
	na.ID = "na-" + now.UTC().Format("20060102t150405") + "-" + newID()[:8]
	na.Sender, na.CreatedAt, na.CreatedBy = n.cfg.Sender, now.UTC(), by
	if err := cap.CheckSender(na.Sender); err != nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "the national CAP sender is not set (-cap-sender): %s", loa.ErrorMessage(err))
	}
	for _, p := range provs {
		na.Provinces = append(na.Provinces, loa.ProvincePush{Province: p.ID, Name: p.Name, State: loa.PushPending, NextAttempt: now.UTC()})
	}
	// Each push is built now, so a message no province could take is
	// refused before anything is stored.
	for _, p := range provs {
		if _, err := NationalMessage(na, p); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	err := n.cfg.DB.PutNationalAlert(ctx, na)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	n.log.Info("national alert", "id", na.ID, "title", na.Title, "level", na.Level, "provinces", len(provs), "by", by)
	n.kick()
	return na, nil
}

func (n *National) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run pushes, retries and polls until ctx ends; it resumes what the store
// holds, so pushes left pending by a restart go on.
func (n *National) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-t.C:
		}
		next := n.step(ctx)
		t.Stop()
		select {
		case <-t.C:
		default:
		}
		t.Reset(max(time.Until(next), 10*time.Millisecond))
	}
}

// step does every push and poll that is due and returns when the next one
// is (an hour away when nothing waits).
func (n *National) step(ctx context.Context) time.Time {
	now := n.cfg.Now()
	next := now.Add(time.Hour)
	alerts, err := n.cfg.DB.NationalAlerts(ctx)
	if err != nil {
		n.log.Error("national alerts: read", "err", err)
		return now.Add(n.cfg.RetryMin)
	}
	for _, na := range alerts {
		if w := n.stepAlert(ctx, na); !w.IsZero() && w.Before(next) {
			next = w
		}
	}
	return next
}

// pollGrace is how long after expiry a province's report is still read,
// so its last lines (a late receiver, the final state) come in.
const pollGrace = 2 * time.Minute

// stepAlert does what is due for one national alert and returns when it
// next needs a look (zero: never).
func (n *National) stepAlert(ctx context.Context, na *loa.NationalAlert) time.Time {
	now := n.cfg.Now()
	type job struct {
		i    int
		prov *loa.Province
	}
	var jobs []job
	var next time.Time
	soon := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for i := range na.Provinces {
		p := &na.Provinces[i]
		switch {
		case p.CancelDue() && (!now.Before(p.CancelNext) || !now.Before(na.ExpiresAt)):
		case p.CancelDue():
			soon(p.CancelNext)
			continue
		case !p.Final() && !now.Before(na.ExpiresAt):
		case !p.Final() && !now.Before(p.NextAttempt):
		case !p.Final():
			soon(p.NextAttempt)
			continue
		case p.State == loa.PushDelivered && p.AlertID != "" && !alertEnded(p.AlertState) && now.Before(na.ExpiresAt.Add(pollGrace)):
			if !now.Before(p.PolledAt.Add(n.cfg.PollEvery)) {
				break
			}
			soon(p.PolledAt.Add(n.cfg.PollEvery))
			continue
		default:
			continue
		}
		prov, err := n.cfg.DB.Province(ctx, p.Province)
		if err != nil {
			prov = nil // removed since: the push is refused below
		}
		jobs = append(jobs, job{i, prov})
	}
	if len(jobs) == 0 {
		return next
	}
	results := make([]loa.ProvincePush, len(jobs))
	var wg sync.WaitGroup
	for k, j := range jobs {
		wg.Go(func() { results[k] = n.work(ctx, na, na.Provinces[j.i], j.prov, now) })
	}
	wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, err := n.cfg.DB.NationalAlert(ctx, na.ID)
	if err != nil {
		n.log.Error("national alert: reread", "id", na.ID, "err", err)
		return now.Add(n.cfg.RetryMin)
	}
	for k, j := range jobs {
		if j.i >= len(cur.Provinces) || cur.Provinces[j.i].Province != results[k].Province {
			continue
		}
		res := results[k]
		if !cur.CancelledAt.IsZero() && na.CancelledAt.IsZero() {
			// Cancelled while this try was out: stop trying, and cancel
			// in the province if the try may have reached it.
			tried := res.State == loa.PushDelivered || res.Attempts > 0 && res.State != loa.PushRefused
			if !res.Final() {
				res.State, res.NextAttempt = loa.PushCancelled, time.Time{}
			}
			if tried && res.CancelState == "" && now.Before(cur.ExpiresAt) {
				res.CancelState, res.CancelNext = loa.PushPending, now.UTC()
			}
		}
		cur.Provinces[j.i] = res
	}
	cur.Totals = loa.AlertTotals{}
	for _, p := range cur.Provinces {
		addTotals(&cur.Totals, p.Totals)
	}
	cur.RecordedAt = now.UTC()
	if err := n.cfg.DB.PutNationalAlert(ctx, cur); err != nil {
		n.log.Error("national alert: write", "id", na.ID, "err", err)
	}
	for _, p := range cur.Provinces {
		switch {
		case p.CancelDue():
			soon(p.CancelNext)
		case !p.Final():
			soon(p.NextAttempt)
		case p.State == loa.PushDelivered && p.AlertID != "" && !alertEnded(p.AlertState) && now.Before(cur.ExpiresAt.Add(pollGrace)):
			soon(p.PolledAt.Add(n.cfg.PollEvery))
		}
	}
	return next
}

func alertEnded(state string) bool {
	return state == loa.AlertFinished || state == loa.AlertCancelled || state == loa.AlertExpired
}

func addTotals(t *loa.AlertTotals, d loa.AlertTotals) {
	t.Receivers += d.Receivers
	t.Queued += d.Queued
	t.Acked += d.Acked
	t.Started += d.Started
	t.Finished += d.Finished
	t.Failed += d.Failed
	t.Late += d.Late
}

// work does the due push or poll of p and returns it changed.
func (n *National) work(ctx context.Context, na *loa.NationalAlert, p loa.ProvincePush, prov *loa.Province, now time.Time) loa.ProvincePush {
	if prov == nil {
		if !p.Final() {
			p.State, p.Reason, p.NextAttempt = loa.PushRefused, "the province was removed from the national list", time.Time{}
		}
		if p.CancelDue() {
			p.CancelState, p.CancelReason = loa.PushRefused, "the province was removed from the national list"
		}
		return p
	}
	if p.CancelDue() {
		n.cancel(ctx, na, prov, &p, now)
		return p
	}
	if p.Final() {
		n.poll(ctx, prov, &p, now)
		return p
	}
	if !now.Before(na.ExpiresAt) {
		p.State, p.NextAttempt = loa.PushExpired, time.Time{}
		p.Reason = strings.TrimSpace("the alert expired before the province took it; " + p.Reason)
		n.log.Warn("national alert: province never took it", "id", na.ID, "province", p.Province, "reason", p.Reason)
		return p
	}
	p.Attempts++
	n.push(ctx, na, prov, &p, now)
	if p.State == loa.PushUnreachable {
		d := n.cfg.RetryMin << min(p.Attempts-1, 16)
		if d > n.cfg.RetryMax || d <= 0 {
			d = n.cfg.RetryMax
		}
		p.NextAttempt = now.Add(d).UTC()
		if p.NextAttempt.After(na.ExpiresAt) {
			p.NextAttempt = na.ExpiresAt
		}
	}
	if p.State == loa.PushDelivered {
		n.poll(ctx, prov, &p, now)
	}
	return p
}

// cancel sends prov the CAP Cancel of na once and records what came of it.
func (n *National) cancel(ctx context.Context, na *loa.NationalAlert, prov *loa.Province, p *loa.ProvincePush, now time.Time) {
	if !now.Before(na.ExpiresAt) {
		p.CancelState, p.CancelNext = loa.PushExpired, time.Time{}
		p.CancelReason = strings.TrimSpace("the alert expired (in the province too) before the cancel got there; " + p.CancelReason)
		return
	}
	p.CancelAttempts++
	body, err := NationalCancelMessage(na)
	if err != nil {
		p.CancelState, p.CancelReason = loa.PushRefused, "building the CAP Cancel: "+loa.ErrorMessage(err)
		return
	}
	status, data, err := n.do(ctx, prov, http.MethodPost, "/api/v1/alerts/cap", body)
	switch {
	case err != nil:
		p.CancelState, p.CancelReason = loa.PushUnreachable, err.Error()
	case status == http.StatusOK:
		p.CancelState, p.CancelReason = loa.PushDelivered, ""
	case status == http.StatusNotFound:
		p.CancelState, p.CancelReason = loa.PushDelivered, "the province had no alert of it"
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		e := decodeError(data)
		p.CancelState, p.CancelReason = loa.PushRefused, fmt.Sprintf("%d %s: %s", status, e.Code, e.Error)
	default:
		e := decodeError(data)
		p.CancelState, p.CancelReason = loa.PushUnreachable, fmt.Sprintf("%d %s: %s", status, e.Code, e.Error)
	}
	if p.CancelState == loa.PushUnreachable {
		d := n.cfg.RetryMin << min(p.CancelAttempts-1, 16)
		if d > n.cfg.RetryMax || d <= 0 {
			d = n.cfg.RetryMax
		}
		p.CancelNext = min64(now.Add(d), na.ExpiresAt).UTC()
	} else {
		p.CancelNext = time.Time{}
		n.log.Info("national alert: cancel", "id", na.ID, "province", prov.ID, "state", p.CancelState, "reason", p.CancelReason)
	}
}

func min64(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// NationalCancelMessage is the CAP Cancel of a cancelled national alert:
// it references the message every province was sent.
func NationalCancelMessage(na *loa.NationalAlert) ([]byte, error) {
	sent := cap.FormatTime(na.CreatedAt.In(ict))
	m := cap.Message{XMLName: xml.Name{Space: cap.Namespace, Local: "alert"},
		Identifier: na.ID + ".cancel", Sender: na.Sender, Sent: cap.FormatTime(na.CancelledAt.In(ict)),
		Status: "Actual", MsgType: "Cancel", Scope: "Public", Note: na.CancelReason,
		References: na.Sender + "," + na.ID + "," + sent}
	if na.Test {
		m.Status = "Exercise"
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("national alert %s: CAP Cancel: %w", na.ID, err)
	}
	if _, err := cap.Parse(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// alertAnswer is what a province answers about its alert (its API's view).
type alertAnswer struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Totals struct {
		All   loa.AlertTotals            `json:"all"`
		Areas map[string]loa.AlertTotals `json:"areas"`
	} `json:"totals"`
}

// errorAnswer is a province's error body.
type errorAnswer struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// takenAs finds the alert a 409 names: the province took this message
// before (an answer lost on the way back) and says which alert it made.
var takenAs = regexp.MustCompile(`\(alert ([A-Za-z0-9_.-]+)\)`)

// push sends the CAP message to prov once and records what came of it.
func (n *National) push(ctx context.Context, na *loa.NationalAlert, prov *loa.Province, p *loa.ProvincePush, now time.Time) {
	body, err := NationalMessage(na, prov)
	if err != nil {
		p.State, p.Reason = loa.PushRefused, "building the CAP message: "+loa.ErrorMessage(err)
		return
	}
	status, data, err := n.do(ctx, prov, http.MethodPost, "/api/v1/alerts/cap", body)
	if err != nil {
		p.State, p.Reason = loa.PushUnreachable, err.Error()
		n.log.Warn("national alert: province unreachable", "id", na.ID, "province", prov.ID, "attempt", p.Attempts, "err", err)
		return
	}
	switch {
	case status == http.StatusCreated || status == http.StatusOK:
		var a alertAnswer
		if err := json.Unmarshal(data, &a); err != nil || a.ID == "" {
			p.State, p.Reason = loa.PushDelivered, "the province took it; its answer named no alert"
		} else {
			p.State, p.Reason, p.AlertID, p.AlertState = loa.PushDelivered, "", a.ID, a.State
			p.PolledAt = now.UTC()
			n.report(ctx, prov, p, a)
		}
		p.DeliveredAt = now.UTC()
	case status == http.StatusAccepted:
		p.State, p.Reason, p.DeliveredAt = loa.PushDelivered, "taken, not sounded: "+string(bytes.TrimSpace(data)), now.UTC()
	case status == http.StatusConflict:
		e := decodeError(data)
		p.State, p.Reason, p.DeliveredAt = loa.PushDelivered, "taken before: "+e.Error, now.UTC()
		if m := takenAs.FindStringSubmatch(e.Error); m != nil {
			p.AlertID, p.Reason = m[1], ""
		}
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		e := decodeError(data)
		p.State, p.Reason, p.NextAttempt = loa.PushRefused, fmt.Sprintf("%d %s: %s", status, e.Code, e.Error), time.Time{}
		n.log.Warn("national alert: province refused it", "id", na.ID, "province", prov.ID, "status", status, "reason", p.Reason)
	default:
		e := decodeError(data)
		p.State, p.Reason = loa.PushUnreachable, fmt.Sprintf("%d %s: %s", status, e.Code, e.Error)
	}
	if p.State == loa.PushDelivered {
		n.log.Info("national alert: province took it", "id", na.ID, "province", prov.ID, "alert", p.AlertID)
	}
}

// poll reads the province's report of its alert. A failure keeps the last
// totals; the next poll tries again.
func (n *National) poll(ctx context.Context, prov *loa.Province, p *loa.ProvincePush, now time.Time) {
	if p.AlertID == "" {
		return
	}
	p.PolledAt = now.UTC()
	status, data, err := n.do(ctx, prov, http.MethodGet, "/api/v1/alerts/"+url.PathEscape(p.AlertID), nil)
	if err != nil || status != http.StatusOK {
		n.log.Debug("national alert: report not read", "province", prov.ID, "alert", p.AlertID, "status", status, "err", err)
		return
	}
	var a alertAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return
	}
	n.report(ctx, prov, p, a)
}

// report keeps what a province's alert answer says: its state, its
// totals, and per commune. The communes' names are read from the
// province once (its areas within the national token's scope).
func (n *National) report(ctx context.Context, prov *loa.Province, p *loa.ProvincePush, a alertAnswer) {
	p.AlertState, p.Totals = a.State, a.Totals.All
	if p.Communes == nil {
		status, data, err := n.do(ctx, prov, http.MethodGet, "/api/v1/areas", nil)
		var areas []loa.Area
		if err != nil || status != http.StatusOK || json.Unmarshal(data, &areas) != nil {
			return // named on a later poll
		}
		p.Communes = []loa.CommuneTotals{}
		for _, ar := range areas {
			if ar.Kind == loa.AreaCommune {
				p.Communes = append(p.Communes, loa.CommuneTotals{ID: ar.ID, Name: ar.Name})
			}
		}
		slices.SortFunc(p.Communes, func(x, y loa.CommuneTotals) int { return strings.Compare(x.Name, y.Name) })
	}
	for i := range p.Communes {
		p.Communes[i].Totals = a.Totals.Areas[p.Communes[i].ID]
	}
}

func decodeError(data []byte) errorAnswer {
	var e errorAnswer
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = truncate(string(bytes.TrimSpace(data)), 300)
	}
	return e
}

// maxAnswer bounds what is read of a province's answer.
const maxAnswer = 4 << 20

// do makes one request to prov over mutually authenticated TLS: the
// province's CA alone is trusted, and the national client certificate
// is presented.
func (n *National) do(ctx context.Context, prov *loa.Province, method, path string, body []byte) (int, []byte, error) {
	certs, err := loa.ParseCAPEM(prov.CAPEM)
	if err != nil {
		return 0, nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if n.cfg.Cert != nil {
		cfg.Certificates = []tls.Certificate{*n.cfg.Cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: n.cfg.Timeout, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, prov.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/cap+xml")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// ict is the zone CAP times are written in (Việt Nam, UTC+7).
var ict = time.FixedZone("ICT", 7*3600)

// NationalMessage is the CAP 1.2 message pushed to prov: the national alert under
// the national sender, its area the province's own code, so the province
// sounds it across its area. A message from the national source keeps its
// info (text, audio, parameters) with the areas replaced.
func NationalMessage(na *loa.NationalAlert, prov *loa.Province) ([]byte, error) {
	area := cap.Area{AreaDesc: prov.Name, Geocode: []cap.NameValue{{ValueName: cap.GeocodeName, Value: prov.Code}}}
	var m cap.Message
	if na.SourceXML != "" {
		src, err := cap.Parse([]byte(na.SourceXML))
		if err != nil {
			return nil, err
		}
		m = *src
		m.Source, m.References, m.MsgType = na.Source, "", "Alert"
		for i := range m.Info {
			m.Info[i].Area = []cap.Area{area}
			m.Info[i].Expires = cap.FormatTime(na.ExpiresAt.In(ict))
		}
	} else {
		in := cap.Info{Language: "vi-VN", Category: []string{"Safety"}, Event: na.Title, Urgency: "Expected",
			Severity: "Moderate", Certainty: "Likely", Headline: na.Title, Description: na.Text,
			Expires: cap.FormatTime(na.ExpiresAt.In(ict)), Area: []cap.Area{area}}
		if na.Level == loa.AlertEmergency {
			in.Urgency, in.Severity, in.Certainty = "Immediate", "Extreme", "Observed"
		}
		m = cap.Message{Status: "Actual", MsgType: "Alert", Scope: "Public", Info: []cap.Info{in}}
		if na.Test {
			m.Status = "Exercise"
		}
	}
	m.XMLName = xml.Name{Space: cap.Namespace, Local: "alert"}
	m.Identifier, m.Sender, m.Sent = na.ID, na.Sender, cap.FormatTime(na.CreatedAt.In(ict))
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("national alert %s: CAP: %w", na.ID, err)
	}
	// What the province will parse is checked here first.
	if _, err := cap.Parse(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
