// Package cap reads and writes OASIS Common Alerting Protocol 1.2
// messages (namespace urn:oasis:names:tc:emergency:cap:1.2) and maps them
// to and from Loa alerts.
//
// Parse validates a message as the CAP 1.2 specification requires of a
// recipient: required elements, enumerations, date-times with a numeric
// zone, references, polygons and circles, embedded resources. Map turns a
// valid message into a loa.Alert against the controller's areas (by
// administrative code) and devices (by location). Export writes an alert
// back as CAP. Every error is EINVALID (ETOOLARGE for size) and names the
// element, "info[0].urgency: ...", so the sender can fix the message.
//
// The package uses only the standard library and the loa domain types: it
// is a codec, not an adapter, and never touches the store or the network.
package cap

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// Namespace is the XML namespace of CAP 1.2.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// MaxSize bounds a message: enough for a few minutes of compressed audio
// embedded as base64, far beyond any text-only alert.
const MaxSize = 4 << 20

// Enumerations of CAP 1.2, in the specification's order (the order error
// messages list them in).
var (
	Statuses      = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	MsgTypes      = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	Scopes        = []string{"Public", "Restricted", "Private"}
	Categories    = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	ResponseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	Urgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	Severities    = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	Certainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// Message is a CAP 1.2 alert message. Parse fills the fields after the
// XML ones; Export builds one to marshal.
type Message struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  string   `xml:"identifier"`
	Sender      string   `xml:"sender"`
	Sent        string   `xml:"sent"`
	Status      string   `xml:"status"`
	MsgType     string   `xml:"msgType"`
	Source      string   `xml:"source,omitempty"`
	Scope       string   `xml:"scope"`
	Restriction string   `xml:"restriction,omitempty"`
	Addresses   string   `xml:"addresses,omitempty"`
	Code        []string `xml:"code,omitempty"`
	Note        string   `xml:"note,omitempty"`
	References  string   `xml:"references,omitempty"`
	Incidents   string   `xml:"incidents,omitempty"`
	Info        []Info   `xml:"info"`

	SentAt time.Time   `xml:"-"` // Sent, parsed
	Refs   []Reference `xml:"-"` // References, parsed
	Raw    []byte      `xml:"-"` // the message as received
}

// Info is one info block: the event, its urgency, severity and certainty,
// what to say, and where.
type Info struct {
	Language     string      `xml:"language,omitempty"`
	Category     []string    `xml:"category"`
	Event        string      `xml:"event"`
	ResponseType []string    `xml:"responseType,omitempty"`
	Urgency      string      `xml:"urgency"`
	Severity     string      `xml:"severity"`
	Certainty    string      `xml:"certainty"`
	Audience     string      `xml:"audience,omitempty"`
	EventCode    []NameValue `xml:"eventCode,omitempty"`
	Effective    string      `xml:"effective,omitempty"`
	Onset        string      `xml:"onset,omitempty"`
	Expires      string      `xml:"expires,omitempty"`
	SenderName   string      `xml:"senderName,omitempty"`
	Headline     string      `xml:"headline,omitempty"`
	Description  string      `xml:"description,omitempty"`
	Instruction  string      `xml:"instruction,omitempty"`
	Web          string      `xml:"web,omitempty"`
	Contact      string      `xml:"contact,omitempty"`
	Parameter    []NameValue `xml:"parameter,omitempty"`
	Resource     []Resource  `xml:"resource,omitempty"`
	Area         []Area      `xml:"area,omitempty"`

	ExpiresAt time.Time `xml:"-"` // Expires, parsed; zero when absent
}

// NameValue is a geocode, eventCode or parameter.
type NameValue struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

// Resource is a file attached to an info block. Loa plays an audio
// resource embedded as derefUri; it does not fetch uri.
type Resource struct {
	ResourceDesc string `xml:"resourceDesc"`
	MimeType     string `xml:"mimeType"`
	Size         string `xml:"size,omitempty"`
	URI          string `xml:"uri,omitempty"`
	DerefURI     string `xml:"derefUri,omitempty"`
	Digest       string `xml:"digest,omitempty"`

	Data []byte `xml:"-"` // DerefURI, decoded
}

// Area is where an info block applies: a description and any number of
// polygons, circles and geocodes.
type Area struct {
	AreaDesc string      `xml:"areaDesc"`
	Polygon  []string    `xml:"polygon,omitempty"`
	Circle   []string    `xml:"circle,omitempty"`
	Geocode  []NameValue `xml:"geocode,omitempty"`
	Altitude string      `xml:"altitude,omitempty"`
	Ceiling  string      `xml:"ceiling,omitempty"`

	Polygons [][]Point `xml:"-"` // Polygon, parsed
	Circles  []Circle  `xml:"-"` // Circle, parsed
}

// Reference names an earlier message: "sender,identifier,sent".
type Reference struct {
	Sender, Identifier, Sent string
}

func (r Reference) String() string { return r.Sender + "," + r.Identifier + "," + r.Sent }

// Parse reads and validates a CAP 1.2 message. Bad input is EINVALID
// naming the element; a message over MaxSize is ETOOLARGE.
func Parse(data []byte) (*Message, error) {
	if len(data) > MaxSize {
		return nil, loa.Errorf(loa.ETOOLARGE, "CAP message: %d bytes is over the %d-byte limit", len(data), MaxSize)
	}
	if err := scan(data); err != nil {
		return nil, err
	}
	m := &Message{}
	if err := xml.Unmarshal(data, m); err != nil {
		return nil, loa.Errorf(loa.EINVALID, "XML: %v", err)
	}
	m.trim()
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.Raw = data
	return m, nil
}

// singletons lists, per parent element, the children CAP allows at most
// once. encoding/xml would silently keep the last of two; a message that
// says two different things is refused instead.
var singletons = map[string][]string{
	"alert":    {"identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction", "addresses", "note", "references", "incidents"},
	"info":     {"language", "event", "urgency", "severity", "certainty", "audience", "effective", "onset", "expires", "senderName", "headline", "description", "instruction", "web", "contact"},
	"resource": {"resourceDesc", "mimeType", "size", "uri", "derefUri", "digest"},
	"area":     {"areaDesc", "altitude", "ceiling"},
}

// scan checks what Unmarshal lets through: a well-formed single document
// with no DOCTYPE or entity declarations (encoding/xml does not expand
// them, but a CAP message never needs one and a parser downstream might)
// and no element repeated where CAP allows one.
func scan(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	type frame struct {
		name string
		seen map[string]int
	}
	var stack []frame
	roots := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return loa.Errorf(loa.EINVALID, "XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			word, _, _ := strings.Cut(strings.TrimSpace(string(t)), " ")
			return loa.Errorf(loa.EINVALID, "XML: <!%s> is refused: a CAP message has no DOCTYPE or entity declarations", word)
		case xml.StartElement:
			if len(stack) == 0 {
				if roots++; roots > 1 {
					return loa.Errorf(loa.EINVALID, "XML: more than one root element")
				}
				if t.Name.Local != "alert" {
					return loa.Errorf(loa.EINVALID, "alert: the root element is <%s>, not a CAP <alert>", t.Name.Local)
				}
				if t.Name.Space != Namespace {
					return loa.Errorf(loa.EINVALID, "alert: namespace %q is not CAP 1.2 (%s)", t.Name.Space, Namespace)
				}
			} else {
				parent := stack[len(stack)-1]
				if parent.seen != nil {
					parent.seen[t.Name.Local]++
					if parent.seen[t.Name.Local] == 2 && contains(singletons[parent.name], t.Name.Local) {
						return loa.Errorf(loa.EINVALID, "%s.%s: appears more than once", parent.name, t.Name.Local)
					}
				}
			}
			f := frame{name: t.Name.Local}
			if singletons[t.Name.Local] != nil {
				f.seen = map[string]int{}
			}
			stack = append(stack, f)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return loa.Errorf(loa.EINVALID, "XML: text outside the root element")
			}
		}
	}
	if roots == 0 {
		return loa.Errorf(loa.EINVALID, "XML: no root element")
	}
	return nil
}

// trim removes the white space XML pretty-printing puts around values;
// CAP values are tokens and free text, none of which starts or ends with
// meaningful space.
func (m *Message) trim() {
	for _, p := range []*string{&m.Identifier, &m.Sender, &m.Sent, &m.Status, &m.MsgType, &m.Source, &m.Scope, &m.Restriction, &m.Addresses, &m.Note, &m.References, &m.Incidents} {
		*p = strings.TrimSpace(*p)
	}
	trimAll(m.Code)
	for i := range m.Info {
		in := &m.Info[i]
		for _, p := range []*string{&in.Language, &in.Event, &in.Urgency, &in.Severity, &in.Certainty, &in.Audience, &in.Effective, &in.Onset, &in.Expires, &in.SenderName, &in.Headline, &in.Description, &in.Instruction, &in.Web, &in.Contact} {
			*p = strings.TrimSpace(*p)
		}
		trimAll(in.Category)
		trimAll(in.ResponseType)
		trimPairs(in.EventCode)
		trimPairs(in.Parameter)
		for j := range in.Resource {
			r := &in.Resource[j]
			for _, p := range []*string{&r.ResourceDesc, &r.MimeType, &r.Size, &r.URI, &r.DerefURI, &r.Digest} {
				*p = strings.TrimSpace(*p)
			}
		}
		for j := range in.Area {
			a := &in.Area[j]
			a.AreaDesc, a.Altitude, a.Ceiling = strings.TrimSpace(a.AreaDesc), strings.TrimSpace(a.Altitude), strings.TrimSpace(a.Ceiling)
			trimAll(a.Polygon)
			trimAll(a.Circle)
			trimPairs(a.Geocode)
		}
	}
}

func trimAll(s []string) {
	for i := range s {
		s[i] = strings.TrimSpace(s[i])
	}
}

func trimPairs(s []NameValue) {
	for i := range s {
		s[i].ValueName, s[i].Value = strings.TrimSpace(s[i].ValueName), strings.TrimSpace(s[i].Value)
	}
}

func (m *Message) validate() error {
	if err := checkToken("identifier", m.Identifier); err != nil {
		return err
	}
	if err := checkToken("sender", m.Sender); err != nil {
		return err
	}
	t, err := ParseTime("sent", m.Sent)
	if err != nil {
		return err
	}
	m.SentAt = t
	if err := oneOf("status", m.Status, Statuses); err != nil {
		return err
	}
	if err := oneOf("msgType", m.MsgType, MsgTypes); err != nil {
		return err
	}
	if err := oneOf("scope", m.Scope, Scopes); err != nil {
		return err
	}
	if m.Scope == "Restricted" && m.Restriction == "" {
		return loa.Errorf(loa.EINVALID, "restriction: required when scope is Restricted")
	}
	if m.Scope == "Private" && m.Addresses == "" {
		return loa.Errorf(loa.EINVALID, "addresses: required when scope is Private")
	}
	if m.References != "" {
		refs, err := ParseReferences(m.References)
		if err != nil {
			return err
		}
		m.Refs = refs
	}
	if m.MsgType == "Cancel" && len(m.Refs) == 0 {
		return loa.Errorf(loa.EINVALID, "references: a Cancel must name the messages it cancels (\"sender,identifier,sent\" ...)")
	}
	if (m.MsgType == "Alert" || m.MsgType == "Update") && len(m.Info) == 0 {
		return loa.Errorf(loa.EINVALID, "info: an %s needs at least one info block", m.MsgType)
	}
	for i := range m.Info {
		if err := m.Info[i].validate(fmt.Sprintf("info[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (in *Info) validate(path string) error {
	if len(in.Category) == 0 {
		return loa.Errorf(loa.EINVALID, "%s.category: required", path)
	}
	for j, c := range in.Category {
		if err := oneOf(fmt.Sprintf("%s.category[%d]", path, j), c, Categories); err != nil {
			return err
		}
	}
	if in.Event == "" {
		return loa.Errorf(loa.EINVALID, "%s.event: required", path)
	}
	for j, c := range in.ResponseType {
		if err := oneOf(fmt.Sprintf("%s.responseType[%d]", path, j), c, ResponseTypes); err != nil {
			return err
		}
	}
	if err := oneOf(path+".urgency", in.Urgency, Urgencies); err != nil {
		return err
	}
	if err := oneOf(path+".severity", in.Severity, Severities); err != nil {
		return err
	}
	if err := oneOf(path+".certainty", in.Certainty, Certainties); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"effective", in.Effective}, {"onset", in.Onset}, {"expires", in.Expires}} {
		if f.v == "" {
			continue
		}
		t, err := ParseTime(path+"."+f.name, f.v)
		if err != nil {
			return err
		}
		if f.name == "expires" {
			in.ExpiresAt = t
		}
	}
	for j, nv := range in.EventCode {
		if err := nv.check(fmt.Sprintf("%s.eventCode[%d]", path, j)); err != nil {
			return err
		}
	}
	for j, nv := range in.Parameter {
		if err := nv.check(fmt.Sprintf("%s.parameter[%d]", path, j)); err != nil {
			return err
		}
	}
	for j := range in.Resource {
		if err := in.Resource[j].validate(fmt.Sprintf("%s.resource[%d]", path, j)); err != nil {
			return err
		}
	}
	for j := range in.Area {
		if err := in.Area[j].validate(fmt.Sprintf("%s.area[%d]", path, j)); err != nil {
			return err
		}
	}
	return nil
}

func (nv NameValue) check(path string) error {
	if nv.ValueName == "" {
		return loa.Errorf(loa.EINVALID, "%s.valueName: required", path)
	}
	if nv.Value == "" {
		return loa.Errorf(loa.EINVALID, "%s.value: required", path)
	}
	return nil
}

func (r *Resource) validate(path string) error {
	if r.ResourceDesc == "" {
		return loa.Errorf(loa.EINVALID, "%s.resourceDesc: required", path)
	}
	if r.MimeType == "" {
		return loa.Errorf(loa.EINVALID, "%s.mimeType: required", path)
	}
	if r.Size != "" {
		if n, err := strconv.ParseInt(r.Size, 10, 64); err != nil || n < 0 {
			return loa.Errorf(loa.EINVALID, "%s.size: %q is not a number of bytes", path, r.Size)
		}
	}
	if r.DerefURI != "" {
		// Senders wrap long base64 over lines; the spaces are not data.
		clean := strings.Map(func(c rune) rune {
			if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				return -1
			}
			return c
		}, r.DerefURI)
		data, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return loa.Errorf(loa.EINVALID, "%s.derefUri: not base64: %v", path, err)
		}
		r.Data = data
	}
	if r.Digest != "" {
		want, err := hex.DecodeString(r.Digest)
		if err != nil || len(want) != sha1.Size {
			return loa.Errorf(loa.EINVALID, "%s.digest: %q is not a SHA-1 in hex", path, r.Digest)
		}
		if r.Data != nil {
			if got := sha1.Sum(r.Data); !bytes.Equal(got[:], want) {
				return loa.Errorf(loa.EINVALID, "%s.digest: the SHA-1 of derefUri is %x, not %s: the resource was damaged", path, got, r.Digest)
			}
		}
	}
	return nil
}

func (a *Area) validate(path string) error {
	if a.AreaDesc == "" {
		return loa.Errorf(loa.EINVALID, "%s.areaDesc: required", path)
	}
	for k, s := range a.Polygon {
		p, err := ParsePolygon(fmt.Sprintf("%s.polygon[%d]", path, k), s)
		if err != nil {
			return err
		}
		a.Polygons = append(a.Polygons, p)
	}
	for k, s := range a.Circle {
		c, err := ParseCircle(fmt.Sprintf("%s.circle[%d]", path, k), s)
		if err != nil {
			return err
		}
		a.Circles = append(a.Circles, c)
	}
	for k, nv := range a.Geocode {
		if err := nv.check(fmt.Sprintf("%s.geocode[%d]", path, k)); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"altitude", a.Altitude}, {"ceiling", a.Ceiling}} {
		if f.v == "" {
			continue
		}
		if _, err := strconv.ParseFloat(f.v, 64); err != nil {
			return loa.Errorf(loa.EINVALID, "%s.%s: %q is not a number of feet", path, f.name, f.v)
		}
	}
	if a.Ceiling != "" && a.Altitude == "" {
		return loa.Errorf(loa.EINVALID, "%s.ceiling: needs an altitude", path)
	}
	return nil
}

// checkToken checks identifier and sender: CAP forbids spaces, commas and
// the restricted characters < and &. Loa also bounds the length, as it
// keys alerts by them.
func checkToken(name, v string) error {
	switch {
	case v == "":
		return loa.Errorf(loa.EINVALID, "%s: required", name)
	case len(v) > 256:
		return loa.Errorf(loa.EINVALID, "%s: %d bytes; at most 256", name, len(v))
	case !utf8.ValidString(v):
		return loa.Errorf(loa.EINVALID, "%s: not valid UTF-8", name)
	}
	for _, c := range v {
		if c == ',' || c == '<' || c == '&' || c <= ' ' || c == 0x7f || c == 0x85 || c == 0xa0 {
			return loa.Errorf(loa.EINVALID, "%s: %q has %q; CAP forbids spaces, commas, < and &", name, v, c)
		}
	}
	return nil
}

// CheckSender reports whether s may be the sender of the messages a
// controller exports; for configuration.
func CheckSender(s string) error { return checkToken("sender", s) }

func oneOf(name, v string, allowed []string) error {
	if v == "" {
		return loa.Errorf(loa.EINVALID, "%s: required, one of %s", name, strings.Join(allowed, "|"))
	}
	if !contains(allowed, v) {
		return loa.Errorf(loa.EINVALID, "%s: %q is not %s", name, v, strings.Join(allowed, "|"))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// capTime is CAP 1.2's dateTime: seconds precision and a numeric zone;
// the specification forbids "Z".
var capTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[-+]\d{2}:\d{2}$`)

// ParseTime parses a CAP dateTime such as 2026-10-12T14:30:00+07:00.
func ParseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: required, a time like 2026-10-12T14:30:00+07:00", name)
	}
	if !capTime.MatchString(v) {
		hint := ""
		if strings.HasSuffix(v, "Z") {
			hint = " (CAP forbids \"Z\": write +00:00)"
		}
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: %q is not a CAP time like 2026-10-12T14:30:00+07:00%s", name, v, hint)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, loa.Errorf(loa.EINVALID, "%s: %q is not a valid time: %v", name, v, err)
	}
	return t, nil
}

// FormatTime writes t as a CAP dateTime in t's zone.
func FormatTime(t time.Time) string {
	return t.Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
}

// ParseReferences parses the references element: space-separated
// "sender,identifier,sent" triples.
func ParseReferences(v string) ([]Reference, error) {
	var refs []Reference
	for i, f := range strings.Fields(v) {
		name := fmt.Sprintf("references[%d]", i)
		parts := strings.Split(f, ",")
		if len(parts) != 3 {
			return nil, loa.Errorf(loa.EINVALID, "%s: %q is not \"sender,identifier,sent\"", name, f)
		}
		if err := checkToken(name+".sender", parts[0]); err != nil {
			return nil, err
		}
		if err := checkToken(name+".identifier", parts[1]); err != nil {
			return nil, err
		}
		if _, err := ParseTime(name+".sent", parts[2]); err != nil {
			return nil, err
		}
		refs = append(refs, Reference{Sender: parts[0], Identifier: parts[1], Sent: parts[2]})
	}
	if len(refs) == 0 {
		return nil, loa.Errorf(loa.EINVALID, "references: empty")
	}
	return refs, nil
}
