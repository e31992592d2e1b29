package station

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// NotifyChannel delivers one notification: e-mail, SMS, a webhook, and
// later Zalo, behind the same method.
type NotifyChannel interface {
	Send(ctx context.Context, m NotifyMessage) error
}

// SMTPChannel sends e-mail through an SMTP server, upgrading the
// connection with STARTTLS (required unless AllowPlain: credentials and
// messages never cross the network in clear).
type SMTPChannel struct {
	Addr       string      // host:port (587 usually)
	User, Pass string      // PLAIN auth when User is set
	From       string      // the envelope and From: address
	TLS        *tls.Config // nil: verify the server's name against the system roots
	AllowPlain bool        // a server without STARTTLS is used in clear (a local relay)
	Timeout    time.Duration
}

// Send writes one plain-text UTF-8 message to m.To.
func (c *SMTPChannel) Send(ctx context.Context, m NotifyMessage) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(c.Addr)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer cl.Close()
	if err := cl.Hello("loa"); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok {
		cfg := c.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host}
		}
		if err := cl.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	} else if !c.AllowPlain {
		return errors.New("smtp: the server offers no STARTTLS; refusing to send in clear")
	}
	if c.User != "" {
		// PlainAuth refuses an unencrypted link to anything but localhost.
		if err := cl.Auth(smtp.PlainAuth("", c.User, c.Pass, host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := cl.Rcpt(m.To); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if _, err := w.Write(mailMessage(c.From, m)); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return cl.Quit()
}

// mailMessage is the RFC 5322 message: the subject Q-encoded, the body
// base64 (Vietnamese is not 7-bit).
func mailMessage(from string, m NotifyMessage) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Loa <%s>\r\nTo: <%s>\r\n", from, m.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n")
	b.WriteString("Auto-Submitted: auto-generated\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// DefaultSMSTemplate is the SMS gateway's request body when none is
// configured: JSON {"to": number, "text": text}.
const DefaultSMSTemplate = `{"to":{{json .To}},"text":{{json .Text}}}`

// SMSGatewayChannel sends SMS through an HTTP gateway: each is a POST to
// URL of the body Template makes from {To, Text, Username}; carriers'
// APIs differ, so the template is configuration. A body starting with
// '{' is sent as JSON, else as a form. Token, when set, is a bearer
// token. Any 2xx is a send.
type SMSGatewayChannel struct {
	URL      string
	Token    string
	Template *template.Template
	Client   *http.Client // nil: one with a 15 s timeout
}

// NewSMSGatewayChannel checks the URL and parses the template (""
// DefaultSMSTemplate). Templates have json (a JSON string) besides
// text/template's urlquery.
func NewSMSGatewayChannel(rawURL, token, tmpl string) (*SMSGatewayChannel, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sms-gateway-url %q: want an http:// or https:// URL", rawURL)
	}
	if tmpl == "" {
		tmpl = DefaultSMSTemplate
	}
	t, err := template.New("sms").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(s string) string { b, _ := json.Marshal(s); return string(b) },
	}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("sms-gateway-template: %w", err)
	}
	// A template that cannot render a message is refused at start, not at
	// the first alarm.
	if _, err := renderSMSRequest(t, NotifyMessage{To: "+84900000000", Text: "Loa"}); err != nil {
		return nil, fmt.Errorf("sms-gateway-template: %w", err)
	}
	return &SMSGatewayChannel{URL: rawURL, Token: token, Template: t, Client: &http.Client{Timeout: 15 * time.Second}}, nil
}

func renderSMSRequest(t *template.Template, m NotifyMessage) ([]byte, error) {
	var b bytes.Buffer
	err := t.Execute(&b, struct{ To, Text, Username string }{m.To, m.Text, m.Username})
	return b.Bytes(), err
}

// Send posts one SMS.
func (g *SMSGatewayChannel) Send(ctx context.Context, m NotifyMessage) error {
	body, err := renderSMSRequest(g.Template, m)
	if err != nil {
		return fmt.Errorf("sms gateway template: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if g.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.Token)
	}
	return postOK(g.Client, req, "sms gateway")
}

func postOK(c *http.Client, req *http.Request, what string) error {
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", what, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// WebhookChannel posts a notification to the alarm webhook's URL as JSON
// {"event":"notification", username, text, subject, link, alarm_id,
// rule_id}, beside the raises and clears the webhook already carries.
type WebhookChannel struct {
	URL    string
	Client *http.Client // nil: one with a 15 s timeout
}

// Send posts m once; the escalation, not a retry, covers a failure.
func (w *WebhookChannel) Send(ctx context.Context, m NotifyMessage) error {
	body, _ := json.Marshal(map[string]string{"event": "notification", "username": m.Username, "text": m.Text,
		"subject": m.Subject, "link": m.Link, "alarm_id": m.AlarmID, "rule_id": m.RuleID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "loa-alarm-webhook/1")
	return postOK(w.Client, req, "webhook")
}
