package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// vietnam is the zone exported times are written in (Asia/Ho_Chi_Minh has
// been UTC+7 without daylight saving since 1975; a fixed zone needs no
// tzdata on the controller).
var vietnam = time.FixedZone("ICT", 7*3600)

// GeocodeName is the valueName of the geocodes Export writes: the
// Vietnamese administrative unit code (mã đơn vị hành chính).
const GeocodeName = "MaDVHC"

// Export writes a as a CAP 1.2 message. An alert that came from CAP is
// the message as received, unchanged. Any other alert gets a message of
// its own: identifier the alert id, sender the controller's sender,
// status Exercise for a test alert else Actual, the level as urgency and
// severity (khẩn cấp: Immediate/Extreme, ưu tiên: Expected/Moderate, which
// Map reads back as the same level), and one area per target area with
// its administrative code; target devices become circles at their
// locations. A cancelled alert is exported as the Cancel message that
// references it. areas and devices are the controller's; Export picks the
// alert's targets from them.
func Export(a *loa.Alert, sender string, areas []*loa.Area, devices []*loa.Device) ([]byte, error) {
	if a.CAP != nil && a.CAP.XML != "" {
		return []byte(a.CAP.XML), nil
	}
	if err := CheckSender(sender); err != nil {
		return nil, err
	}
	m := Message{
		XMLName:    xml.Name{Space: Namespace, Local: "alert"},
		Identifier: a.ID,
		Sender:     sender,
		Sent:       FormatTime(a.CreatedAt.In(vietnam)),
		Status:     "Actual",
		MsgType:    "Alert",
		Scope:      "Public",
	}
	if a.Test {
		m.Status = "Exercise"
	}
	if a.State == loa.AlertCancelled {
		ended := a.EndedAt
		if ended.IsZero() {
			ended = a.CreatedAt
		}
		m.References = sender + "," + a.ID + "," + m.Sent
		m.Identifier = a.ID + ".cancel"
		m.Sent = FormatTime(ended.In(vietnam))
		m.MsgType = "Cancel"
		m.Note = a.Reason
	}
	in := Info{
		Language:    "vi-VN",
		Category:    []string{"Safety"},
		Event:       a.Title,
		Urgency:     "Expected",
		Severity:    "Moderate",
		Certainty:   "Likely",
		Headline:    a.Title,
		Description: a.Content.Text,
	}
	if a.Level == loa.AlertEmergency {
		in.Urgency, in.Severity, in.Certainty = "Immediate", "Extreme", "Observed"
	}
	if in.Event == "" {
		in.Event = "Cảnh báo"
	}
	if !a.ExpiresAt.IsZero() {
		in.Expires = FormatTime(a.ExpiresAt.In(vietnam))
	}
	for _, ar := range areas {
		if !containsID(a.Targets.Areas, ar.ID) {
			continue
		}
		ca := Area{AreaDesc: ar.Name}
		if ar.Code != "" {
			ca.Geocode = []NameValue{{ValueName: GeocodeName, Value: ar.Code}}
		}
		in.Area = append(in.Area, ca)
	}
	var names []string
	var circles []string
	for _, d := range devices {
		if !containsID(a.Targets.Devices, d.ID) {
			continue
		}
		names = append(names, d.ID)
		if d.Lat != 0 || d.Lon != 0 {
			circles = append(circles, fmt.Sprintf("%.6f,%.6f 0.1", d.Lat, d.Lon))
		}
	}
	if len(names) > 0 {
		in.Area = append(in.Area, Area{AreaDesc: "Thiết bị: " + strings.Join(names, ", "), Circle: circles})
	}
	m.Info = []Info{in}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("cap: export %s: %w", a.ID, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func containsID(ids []string, id string) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}
