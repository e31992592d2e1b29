package cap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// Options tune how a message becomes an alert. Zero fields take the
// defaults in brackets.
type Options struct {
	Repeats       int           // times the alert plays [2]
	Gap           time.Duration // between repeats [5 s]
	DefaultExpiry time.Duration // after sent, when info.expires is absent [1 h]
	MaxExpiry     time.Duration // a later info.expires is brought in to this [24 h]
}

func (o Options) withDefaults() Options {
	if o.Repeats == 0 {
		o.Repeats = 2
	}
	if o.Gap == 0 {
		o.Gap = 5 * time.Second
	}
	if o.DefaultExpiry == 0 {
		o.DefaultExpiry = time.Hour
	}
	if o.MaxExpiry == 0 {
		o.MaxExpiry = 24 * time.Hour
	}
	return o
}

// StoredCodeParameter names an info parameter whose value is a stored
// message code: receivers that hold that message play it from their own
// storage, the others the message's audio or speech.
const StoredCodeParameter = "LOA_STORED_CODE"

// Mapping is what a message asks of the controller. Exactly one of
// Alert, Cancel and Silent applies:
//   - Alert (msgType Alert or Update): send it; when Audio is set, import
//     it as a media item first and put its id in Alert.Content.MediaID.
//     Supersedes lists what an Update replaces: cancel those after.
//   - Cancel (msgType Cancel): cancel the alerts these references name.
//   - Silent != "": the message is valid but sounds nowhere (status
//     System or Draft, msgType Ack or Error); Silent says why.
type Mapping struct {
	Alert      *loa.Alert
	Audio      *Audio
	Supersedes []Reference
	Cancel     []Reference
	Silent     string
}

// Audio is an audio resource embedded in the message.
type Audio struct {
	Name     string // resourceDesc
	MimeType string
	Data     []byte
}

// Map turns a valid message into what the controller should do, against
// the areas (matched by administrative Code to geocodes) and devices
// (matched by location to polygons and circles) the caller may target.
// It sets Test for status Exercise and Test, which the alert service
// sounds only in areas marked for tests.
func Map(m *Message, areas []*loa.Area, devices []*loa.Device, now time.Time, opt Options) (*Mapping, error) {
	opt = opt.withDefaults()
	switch {
	case m.Status == "System":
		return &Mapping{Silent: "status System is a message between systems; nothing sounds"}, nil
	case m.Status == "Draft":
		return &Mapping{Silent: "status Draft is not to be acted on; nothing sounds"}, nil
	case m.MsgType == "Ack" || m.MsgType == "Error":
		return &Mapping{Silent: "msgType " + m.MsgType + " answers a message; nothing sounds"}, nil
	case m.MsgType == "Cancel":
		return &Mapping{Cancel: m.Refs}, nil
	}

	i, in := m.pickInfo()
	path := fmt.Sprintf("info[%d]", i)
	level := loa.AlertPriority
	if in.Urgency == "Immediate" && (in.Severity == "Extreme" || in.Severity == "Severe") {
		level = loa.AlertEmergency
	}
	// Without an expiry the message is good for DefaultExpiry after it
	// was sent, so an old message replayed or delayed does not sound.
	expires := m.SentAt.Add(opt.DefaultExpiry)
	if !in.ExpiresAt.IsZero() {
		expires = in.ExpiresAt
	}
	switch {
	case !expires.After(now) && in.ExpiresAt.IsZero():
		return nil, loa.Errorf(loa.EINVALID, "sent: %s is more than %v ago and %s has no expires: the alert is stale", m.Sent, opt.DefaultExpiry, path)
	case !expires.After(now):
		return nil, loa.Errorf(loa.EINVALID, "%s.expires: %s has passed: the alert expired before it arrived", path, in.Expires)
	}
	if limit := now.Add(opt.MaxExpiry); expires.After(limit) {
		expires = limit
	}
	targets, err := mapTargets(path, in, areas, devices)
	if err != nil {
		return nil, err
	}

	a := &loa.Alert{
		Title:     title(in),
		Level:     level,
		Content:   loa.AlertContent{Tone: true},
		Targets:   targets,
		Repeats:   opt.Repeats,
		Gap:       opt.Gap,
		ExpiresAt: expires,
		Test:      m.Status == "Exercise" || m.Status == "Test",
		CAP:       &loa.AlertCAPInfo{Identifier: m.Identifier, Sender: m.Sender, Sent: m.Sent, XML: string(m.Raw)},
	}
	for j, p := range in.Parameter {
		if p.ValueName != StoredCodeParameter {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(p.Value))
		if err != nil || n < loa.MinStoredCode || n > loa.MaxStoredCode {
			return nil, loa.Errorf(loa.EINVALID, "%s.parameter[%d]: %s must be a stored message code %d–%d, not %q",
				path, j, StoredCodeParameter, loa.MinStoredCode, loa.MaxStoredCode, p.Value)
		}
		a.StoredCode = n
	}
	out := &Mapping{Alert: a}
	if m.MsgType == "Update" {
		out.Supersedes = m.Refs
	}
	for _, r := range in.Resource {
		if strings.HasPrefix(strings.ToLower(r.MimeType), "audio/") && r.Data != nil {
			out.Audio = &Audio{Name: r.ResourceDesc, MimeType: r.MimeType, Data: r.Data}
			return out, nil
		}
	}
	text := speech(in)
	if text == "" {
		hint := ""
		for j, r := range in.Resource {
			if strings.HasPrefix(strings.ToLower(r.MimeType), "audio/") && r.URI != "" {
				// Fetching a URL a message names would let any sender make
				// the controller reach into its own network.
				hint = fmt.Sprintf("; %s.resource[%d] is audio at a URL, which Loa does not fetch: embed it as derefUri", path, j)
				break
			}
		}
		return nil, loa.Errorf(loa.EINVALID, "%s: nothing to play: no embedded audio resource and no headline, description or instruction to speak%s", path, hint)
	}
	if n := utf8.RuneCountInString(text); n > loa.MaxAlertText {
		return nil, loa.Errorf(loa.EINVALID, "%s: headline, description and instruction are %d characters, more than the %d the speech engine takes; shorten them or embed audio", path, n, loa.MaxAlertText)
	}
	a.Content.Text = text
	return out, nil
}

// pickInfo chooses the info block to play: the first in Vietnamese, else
// the first. CAP repeats an alert's info per language; a commune speaker
// plays one.
func (m *Message) pickInfo() (int, *Info) {
	for i := range m.Info {
		if l := strings.ToLower(m.Info[i].Language); l == "vi" || strings.HasPrefix(l, "vi-") {
			return i, &m.Info[i]
		}
	}
	return 0, &m.Info[0]
}

// title is the alert's title: the headline, else the event, cut at a
// character boundary to loa.MaxAlertTitle bytes.
func title(in *Info) string {
	t := loa.OneLine(in.Headline)
	if t == "" {
		t = loa.OneLine(in.Event)
	}
	if len(t) <= loa.MaxAlertTitle {
		return t
	}
	const ellipsis = "…"
	n := loa.MaxAlertTitle - len(ellipsis)
	for n > 0 && !utf8.RuneStart(t[n]) {
		n--
	}
	return t[:n] + ellipsis
}

// speech is what the controller says: headline, description and
// instruction as sentences.
func speech(in *Info) string {
	var parts []string
	for _, s := range []string{in.Headline, in.Description, in.Instruction} {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if last, _ := utf8.DecodeLastRuneInString(s); !strings.ContainsRune(".!?…:;", last) {
			s += "." // a pause between the parts, not one run-on sentence
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// mapTargets resolves each area of in: its geocodes to the areas with
// that administrative code (every geocode must be known), its polygons
// and circles to the devices located inside. An area that reaches
// nothing is an error, so no part of a warning is silently dropped.
func mapTargets(path string, in *Info, areas []*loa.Area, devices []*loa.Device) (loa.Targets, error) {
	var t loa.Targets
	if len(in.Area) == 0 {
		return t, loa.Errorf(loa.EINVALID, "%s.area: none: the alert targets nothing", path)
	}
	byCode := map[string][]string{}
	for _, a := range areas {
		if a.Code != "" {
			byCode[a.Code] = append(byCode[a.Code], a.ID)
		}
	}
	for j := range in.Area {
		ar := &in.Area[j]
		apath := fmt.Sprintf("%s.area[%d]", path, j)
		reached := 0
		for k, g := range ar.Geocode {
			ids := byCode[g.Value]
			if len(ids) == 0 {
				return t, loa.Errorf(loa.EINVALID, "%s.geocode[%d]: no area has code %q (%s %s)", apath, k, g.Value, g.ValueName, ar.AreaDesc)
			}
			t.Areas = append(t.Areas, ids...)
			reached += len(ids)
		}
		if len(ar.Polygons) == 0 && len(ar.Circles) == 0 {
			if len(ar.Geocode) == 0 {
				return t, loa.Errorf(loa.EINVALID, "%s: %q has no geocode, polygon or circle: the alert targets nothing there", apath, ar.AreaDesc)
			}
			continue
		}
		for _, d := range devices {
			if d.Lat == 0 && d.Lon == 0 {
				continue // location unknown
			}
			p := Point{d.Lat, d.Lon}
			inside := false
			for _, poly := range ar.Polygons {
				if inside = InPolygon(p, poly); inside {
					break
				}
			}
			for _, c := range ar.Circles {
				if inside {
					break
				}
				inside = InCircle(p, c)
			}
			if inside {
				t.Devices = append(t.Devices, d.ID)
				reached++
			}
		}
		if reached == 0 {
			return t, loa.Errorf(loa.EINVALID, "%s: the polygon or circle of %q covers no receiver: the alert targets nothing there", apath, ar.AreaDesc)
		}
	}
	t.Areas = dedupe(t.Areas)
	t.Devices = dedupe(t.Devices)
	return t, nil
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
