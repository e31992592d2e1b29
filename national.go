package loa

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"strings"
	"time"
)

// Province is a province controller a national controller pushes alerts
// to: its base URL, the administrative code its root area carries (the
// CAP geocode every push names), and the CA its HTTPS certificate chains
// to (CAPEM), so the push trusts that province's own CA and nothing else.
type Province struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Code      string    `json:"code"`   // MaDVHC of the province's root area
	URL       string    `json:"url"`    // https://… base of the province controller
	CAPEM     string    `json:"ca_pem"` // PEM certificate(s) its HTTPS server chains to
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Validate checks p as an admin sent it.
func (p *Province) Validate() error {
	if err := ValidateID("id", p.ID); err != nil {
		return err
	}
	if err := ValidateName("name", p.Name, true); err != nil {
		return err
	}
	if p.Code == "" || len(p.Code) > 16 || strings.ContainsAny(p.Code, " \t\r\n<>&") {
		return Errorf(EINVALID, "code: the administrative code (MaDVHC) of the province's root area, 1–16 characters")
	}
	u, err := url.Parse(p.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Errorf(EINVALID, "url: %q: the province controller's https:// base URL, like https://loa.quangngai.gov.vn", p.URL)
	}
	p.URL = strings.TrimRight(p.URL, "/")
	if len(p.CAPEM) > 64<<10 {
		return Errorf(EINVALID, "ca_pem: at most 64 KiB")
	}
	if _, err := ParseCAPEM(p.CAPEM); err != nil {
		return err
	}
	return nil
}

// ParseCAPEM returns the certificates of a PEM bundle: at least one, each
// parsable; EINVALID naming ca_pem otherwise.
func ParseCAPEM(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, Errorf(EINVALID, "ca_pem: a %s block; only CERTIFICATE blocks belong here", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, Errorf(EINVALID, "ca_pem: certificate %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, Errorf(EINVALID, "ca_pem: no PEM certificate: paste the province's CA certificate (its tls/ca.crt)")
	}
	return out, nil
}

// CertSHA256 is the fingerprint a token binds a client certificate by:
// the SHA-256 of its DER, in lower-case hex.
func CertSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// States of a national alert's push to one province.
const (
	PushPending     = "pending"     // not yet tried, or the next try is due
	PushDelivered   = "delivered"   // the province took the CAP message (201)
	PushUnreachable = "unreachable" // the last try did not reach it; retried with back-off until expiry
	PushRefused     = "refused"     // the province answered no (4xx): Reason has its words; not retried
	PushExpired     = "expired"     // the alert expired before the province took it
	PushCancelled   = "cancelled"   // the national alert was cancelled before the province took it
)

// NationalAlert is an alert a national controller pushes to provinces:
// the CAP 1.2 message it sends (one per province, naming its code) and
// where each push stands.
type NationalAlert struct {
	ID         string         `json:"id"` // also the CAP identifier of every push
	Title      string         `json:"title"`
	Level      string         `json:"level"`
	Text       string         `json:"text,omitempty"`
	Test       bool           `json:"test,omitempty"`
	Source     string         `json:"source,omitempty"`     // the CAP sender,identifier it came from, if any
	Sender     string         `json:"sender"`               // the national CAP sender of the pushes
	SourceXML  string         `json:"source_xml,omitempty"` // the source's CAP message, re-sent under Sender
	ExpiresAt  time.Time      `json:"expires_at"`
	CreatedAt  time.Time      `json:"created_at"`
	CreatedBy  string         `json:"created_by,omitempty"`
	Provinces  []ProvincePush `json:"provinces"`
	Totals     AlertTotals    `json:"totals"` // over every province that reported
	RecordedAt time.Time      `json:"recorded_at,omitzero"`

	// A cancelled national alert sends each province that took it (or may
	// have) a CAP Cancel, retried like the alert (ProvincePush.Cancel).
	CancelledAt  time.Time `json:"cancelled_at,omitzero"`
	CancelledBy  string    `json:"cancelled_by,omitempty"`
	CancelReason string    `json:"cancel_reason,omitempty"`
}

// ProvincePush is one province's side of a national alert.
type ProvincePush struct {
	Province    string          `json:"province"`
	Name        string          `json:"name"`
	State       string          `json:"state"`
	Reason      string          `json:"reason,omitempty"`
	Attempts    int             `json:"attempts"`
	NextAttempt time.Time       `json:"next_attempt,omitzero"`
	DeliveredAt time.Time       `json:"delivered_at,omitzero"`
	AlertID     string          `json:"alert_id,omitempty"` // the province's own alert
	AlertState  string          `json:"alert_state,omitempty"`
	Totals      AlertTotals     `json:"totals"`
	Communes    []CommuneTotals `json:"communes,omitempty"` // the province's report per commune
	PolledAt    time.Time       `json:"polled_at,omitzero"`

	// The CAP Cancel to this province once the national alert is cancelled:
	// CancelState pending, delivered (the province cancelled it, or had
	// none), unreachable (retried until expiry), refused or expired.
	CancelState    string    `json:"cancel_state,omitempty"`
	CancelReason   string    `json:"cancel_reason,omitempty"`
	CancelAttempts int       `json:"cancel_attempts,omitempty"`
	CancelNext     time.Time `json:"cancel_next,omitzero"`
}

// CommuneTotals is one commune's line of a province's report.
type CommuneTotals struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Totals AlertTotals `json:"totals"`
}

// Final reports whether the push will change no more (its report may).
func (p *ProvincePush) Final() bool {
	return p.State == PushDelivered || p.State == PushRefused || p.State == PushExpired || p.State == PushCancelled
}

// CancelDue reports whether a Cancel to the province is still to be sent.
func (p *ProvincePush) CancelDue() bool {
	return p.CancelState == PushPending || p.CancelState == PushUnreachable
}

// NationalIdentity is who a national controller is to the provinces: the
// CAP sender of its pushes and the client certificate it presents, which
// a province binds to a token (client_cert_sha256, cap_senders).
type NationalIdentity struct {
	Sender     string `json:"sender"`
	CertSHA256 string `json:"cert_sha256"`
	CertPEM    string `json:"cert_pem"`
}

// NationalRequest is an alert an admin sends to provinces by hand.
type NationalRequest struct {
	Title     string
	Level     string
	Text      string
	Test      bool
	ExpiresAt time.Time
	Provinces []string // ids; empty = every province
}
