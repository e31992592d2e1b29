package cap

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// now is a moment after every fixture was sent and before any expires.
var now = time.Date(2026, 10, 12, 6, 40, 0, 0, time.FixedZone("ICT", 7*3600))

// inventory is a controller's areas and devices: two provinces, their
// coastal and inland communes (with administrative codes), and receivers
// at real positions along the coast, inland and offshore.
func inventory() ([]*loa.Area, []*loa.Device) {
	areas := []*loa.Area{
		{ID: "quang-ngai", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince, Code: "51"},
		{ID: "binh-chau", ParentID: "quang-ngai", Name: "Xã Bình Châu", Kind: loa.AreaCommune, Code: "20590"},
		{ID: "tinh-ky", ParentID: "quang-ngai", Name: "Phường Tịnh Kỳ", Kind: loa.AreaCommune, Code: "21070"},
		{ID: "nghia-an", ParentID: "quang-ngai", Name: "Xã Nghĩa An", Kind: loa.AreaCommune, Code: "21091", Tests: true},
		{ID: "son-ha", ParentID: "quang-ngai", Name: "Thị trấn Di Lăng", Kind: loa.AreaCommune, Code: "21244"},
		{ID: "ly-son", ParentID: "quang-ngai", Name: "Đặc khu Lý Sơn", Kind: loa.AreaCommune, Code: "21172"},
		{ID: "hue", Name: "Tỉnh Thừa Thiên Huế", Kind: loa.AreaProvince, Code: "46"},
		{ID: "hai-duong", ParentID: "hue", Name: "Xã Hải Dương", Kind: loa.AreaCommune, Code: "19933"},
		{ID: "phu-thuan", ParentID: "hue", Name: "Xã Phú Thuận", Kind: loa.AreaCommune, Code: "19960"},
		{ID: "a-luoi", ParentID: "hue", Name: "Thị trấn A Lưới", Kind: loa.AreaCommune, Code: "19777"},
		{ID: "no-code", ParentID: "hue", Name: "Cụm chưa có mã", Kind: loa.AreaCommune},
	}
	devices := []*loa.Device{
		{ID: "bc-1", AreaID: "binh-chau", Lat: 15.230, Lon: 108.870},
		{ID: "tk-1", AreaID: "tinh-ky", Lat: 15.190, Lon: 108.880},
		{ID: "na-1", AreaID: "nghia-an", Lat: 15.120, Lon: 108.860},
		{ID: "sh-1", AreaID: "son-ha", Lat: 15.030, Lon: 108.480}, // inland
		{ID: "ls-1", AreaID: "ly-son", Lat: 15.380, Lon: 109.120}, // offshore island
		{ID: "hd-1", AreaID: "hai-duong", Lat: 16.570, Lon: 107.620},
		{ID: "pt-1", AreaID: "phu-thuan", Lat: 16.500, Lon: 107.750},
		{ID: "al-1", AreaID: "a-luoi", Lat: 16.220, Lon: 107.270}, // mountains
		{ID: "nowhere", AreaID: "no-code"},                        // location unknown
	}
	return areas, devices
}

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	return files
}

// TestValidFixtures parses and maps every valid fixture and checks what
// the controller would do: level, targets, content, test flag, expiry.
func TestValidFixtures(t *testing.T) {
	type want struct {
		level, title, text string
		areas, devices     []string
		test               bool
		audio              bool
		expires            time.Time
		cancel, supersedes []string // identifiers referenced
		silent             bool
	}
	ict := time.FixedZone("ICT", 7*3600)
	cases := map[string]want{
		"geocode.xml": {
			level: loa.AlertEmergency, title: "Cảnh báo lũ quét khẩn cấp",
			text:    "Cảnh báo lũ quét khẩn cấp. Mưa lớn 250 mm trong 12 giờ qua, nguy cơ lũ quét và sạt lở đất rất cao tại các xã ven sông Trà Bồng. Bà con khẩn trương sơ tán đến nơi an toàn, không qua lại các ngầm tràn.",
			areas:   []string{"binh-chau", "tinh-ky"},
			expires: time.Date(2026, 10, 12, 18, 0, 0, 0, ict),
		},
		// Expected + Extreme is ưu tiên: only Immediate warnings cut in
		// as khẩn cấp. The Vietnamese info block is the one played.
		"typhoon-polygon.xml": {
			level: loa.AlertPriority, title: "Bão số 13 đang tiến vào bờ biển miền Trung",
			text:    "Bão số 13 đang tiến vào bờ biển miền Trung. Đêm nay bão số 13 đổ bộ vào khu vực từ Thừa Thiên Huế đến Quảng Ngãi, sức gió mạnh cấp 12, giật cấp 14, gió 120 km/h. Bà con ở trong nhà kiên cố, tàu thuyền khẩn trương về nơi tránh trú.",
			devices: []string{"bc-1", "hd-1", "na-1", "pt-1", "tk-1"},
			expires: time.Date(2026, 10, 13, 5, 30, 0, 0, ict),
		},
		"circle.xml": {
			level: loa.AlertEmergency, title: "Rò rỉ khí độc tại cảng",
			text:    "Rò rỉ khí độc tại cảng. Đóng kín cửa, không ra ngoài cho đến khi có thông báo mới.",
			devices: []string{"bc-1", "tk-1"},
			expires: time.Date(2026, 10, 12, 7, 5, 0, 0, ict),
		},
		"audio.xml": {
			level: loa.AlertEmergency, title: "Cảnh báo triều cường",
			areas: []string{"tinh-ky"}, audio: true, expires: time.Date(2026, 10, 12, 7, 15, 0, 0, ict),
		},
		"exercise.xml": {
			level: loa.AlertEmergency, title: "Đây là tin diễn tập",
			text:  "Đây là tin diễn tập. Đây là tin diễn tập, không phải cảnh báo thật.",
			areas: []string{"quang-ngai"}, test: true, expires: time.Date(2026, 10, 12, 7, 10, 0, 0, ict),
		},
		"update.xml": {
			level: loa.AlertPriority, title: "Cập nhật: nguy cơ lũ quét giảm",
			text: "Cập nhật: nguy cơ lũ quét giảm.", areas: []string{"binh-chau"},
			expires: time.Date(2026, 10, 12, 7, 30, 0, 0, ict), supersedes: []string{"VN-QNG-2026-0142"},
		},
		// An audio resource at a URL is not fetched; the text is spoken.
		"uri-audio-text.xml": {
			level: loa.AlertPriority, title: "Phòng chống sốt xuất huyết",
			text:  "Phòng chống sốt xuất huyết. Số ca sốt xuất huyết tăng 30% so với cùng kỳ.",
			areas: []string{"nghia-an"}, expires: time.Date(2026, 10, 12, 7, 20, 0, 0, ict),
		},
		"cancel.xml": {cancel: []string{"VN-QNG-2026-0142"}},
		"system.xml": {silent: true},
	}
	areas, devices := inventory()
	for _, path := range fixtures(t, "valid") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			w, ok := cases[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation in this table", name)
			}
			raw := readFixture(t, path)
			m, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Raw, raw) {
				t.Error("Raw is not the message as received")
			}
			got, err := Map(m, areas, devices, now, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range append(got.Cancel, got.Supersedes...) {
				ids = append(ids, r.Identifier)
			}
			if !slices.Equal(ids, append(w.cancel, w.supersedes...)) {
				t.Errorf("references %v, want %v", ids, append(w.cancel, w.supersedes...))
			}
			if (got.Silent != "") != w.silent {
				t.Errorf("silent %q, want %v", got.Silent, w.silent)
			}
			if w.cancel != nil || w.silent {
				if got.Alert != nil {
					t.Errorf("a %s/%s message makes an alert", m.Status, m.MsgType)
				}
				return
			}
			a := got.Alert
			if a.Level != w.level || a.Title != w.title || a.Content.Text != w.text || a.Test != w.test {
				t.Errorf("level %q title %q test %v\ntext %q\nwant %q %q %v\n%q", a.Level, a.Title, a.Test, a.Content.Text, w.level, w.title, w.test, w.text)
			}
			if !slices.Equal(a.Targets.Areas, w.areas) || !slices.Equal(a.Targets.Devices, w.devices) {
				t.Errorf("targets %v %v, want %v %v", a.Targets.Areas, a.Targets.Devices, w.areas, w.devices)
			}
			if !a.ExpiresAt.Equal(w.expires) {
				t.Errorf("expires %v, want %v", a.ExpiresAt, w.expires)
			}
			if (got.Audio != nil) != w.audio {
				t.Errorf("audio %v, want %v", got.Audio != nil, w.audio)
			}
			if got.Audio != nil && (!bytes.HasPrefix(got.Audio.Data, []byte("RIFF")) || got.Audio.MimeType != "audio/wav") {
				t.Errorf("audio %q %.8q", got.Audio.MimeType, got.Audio.Data)
			}
			if !a.Content.Tone || a.Repeats != 2 || a.Gap != 5*time.Second {
				t.Errorf("tone %v repeats %d gap %v", a.Content.Tone, a.Repeats, a.Gap)
			}
			if a.CAP == nil || a.CAP.Identifier != m.Identifier || a.CAP.Sender != m.Sender || a.CAP.Sent != m.Sent || a.CAP.XML != string(raw) {
				t.Errorf("CAP info %+v", a.CAP)
			}
			// What Map makes, the alert service accepts (once the audio
			// is a media item).
			if got.Audio != nil {
				a.Content.MediaID = "imported"
			}
			if err := a.Validate(now); err != nil {
				t.Errorf("mapped alert does not validate: %v", err)
			}
		})
	}
}

// TestInvalidFixtures: every malformed message is refused with an error
// naming what is wrong.
func TestInvalidFixtures(t *testing.T) {
	cases := map[string]string{
		"missing-identifier.xml":           "identifier: required",
		"identifier-space.xml":             `identifier: "VN QNG 2026 0142" has ' '`,
		"missing-sender.xml":               "sender: required",
		"bad-urgency.xml":                  `info[0].urgency: "Soon" is not Immediate|Expected|Future|Past|Unknown`,
		"bad-severity.xml":                 `info[0].severity: "Catastrophic" is not Extreme|Severe|Moderate|Minor|Unknown`,
		"bad-certainty.xml":                `info[0].certainty: "Very Likely" is not Observed|Likely|Possible|Unlikely|Unknown`,
		"bad-status.xml":                   `status: "Real" is not Actual|Exercise|System|Test|Draft`,
		"bad-msgtype.xml":                  `msgType: "Warning" is not Alert|Update|Cancel|Ack|Error`,
		"bad-scope.xml":                    `scope: "Everyone" is not Public|Restricted|Private`,
		"bad-category.xml":                 `info[0].category[0]: "Flood" is not Geo|Met|`,
		"bad-response-type.xml":            `info[0].responseType[0]: "Run"`,
		"missing-event.xml":                "info[0].event: required",
		"missing-category.xml":             "info[0].category: required",
		"sent-zulu.xml":                    `sent: "2026-10-11T23:00:00Z" is not a CAP time like 2026-10-12T14:30:00+07:00 (CAP forbids "Z"`,
		"sent-no-time.xml":                 `sent: "2026-10-12" is not a CAP time`,
		"sent-no-zone.xml":                 `sent: "2026-10-12T06:00:00" is not a CAP time`,
		"sent-bad-month.xml":               `sent: "2026-13-12T06:00:00+07:00" is not a valid time`,
		"bad-expires.xml":                  `info[0].expires: "tomorrow" is not a CAP time`,
		"duplicate-identifier-element.xml": "alert.identifier: appears more than once",
		"duplicate-urgency.xml":            "info.urgency: appears more than once",
		"restricted-no-restriction.xml":    "restriction: required when scope is Restricted",
		"private-no-addresses.xml":         "addresses: required when scope is Private",
		"wrong-namespace.xml":              `alert: namespace "urn:oasis:names:tc:emergency:cap:1.1" is not CAP 1.2`,
		"no-namespace.xml":                 `alert: namespace "" is not CAP 1.2`,
		"not-cap.xml":                      "alert: the root element is <feed>",
		"malformed.xml":                    "XML: ",
		"truncated.xml":                    "XML: ",
		"two-roots.xml":                    "XML: more than one root element",
		"latin1.xml":                       "XML: ",
		"empty.xml":                        "XML: no root element",
		"json.xml":                         "XML: ",
		"doctype.xml":                      "XML: <!DOCTYPE> is refused",
		"xxe.xml":                          "XML: <!DOCTYPE> is refused",
		"alert-without-info.xml":           "info: an Alert needs at least one info block",
		"geocode-no-value.xml":             "info[0].area[0].geocode[1].value: required",
		"area-no-desc.xml":                 "info[0].area[0].areaDesc: required",
		"polygon-open.xml":                 "info[0].area[0].polygon[0]: not closed",
		"polygon-short.xml":                "info[0].area[0].polygon[0]: 3 points; a polygon needs at least 4",
		"polygon-bad-point.xml":            `info[0].area[0].polygon[0]: "15.2;108.8" is not "lat,lon"`,
		"polygon-out-of-range.xml":         `info[0].area[0].polygon[0]: "95.2,108.8" is outside`,
		"circle-negative-radius.xml":       `info[0].area[0].circle[0]: radius "-5"`,
		"circle-no-radius.xml":             `info[0].area[0].circle[0]: "15.19,108.88" is not "lat,lon radius-km"`,
		"bad-altitude.xml":                 `info[0].area[0].altitude: "high"`,
		"cancel-no-references.xml":         "references: a Cancel must name the messages it cancels",
		"references-two-parts.xml":         `references[0]: "pctt.quangngai.gov.vn,VN-QNG-2026-0142" is not "sender,identifier,sent"`,
		"references-bad-time.xml":          `references[0].sent: "yesterday"`,
		"bad-digest.xml":                   "info[0].resource[0].digest: the SHA-1 of derefUri is",
		"bad-base64.xml":                   "info[0].resource[0].derefUri: not base64",
	}
	for _, path := range fixtures(t, "invalid") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation in this table", name)
			}
			m, err := Parse(readFixture(t, path))
			if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), want) {
				t.Fatalf("got %v (%v)\nwant invalid: %s", err, m, want)
			}
		})
	}
}

// TestUnmappableFixtures: valid CAP the controller cannot act on is
// refused by Map, naming why.
func TestUnmappableFixtures(t *testing.T) {
	cases := map[string]string{
		"unknown-geocode.xml":        `info[0].area[0].geocode[1]: no area has code "99999"`,
		"expired.xml":                "info[0].expires: 2026-10-12T05:00:00+07:00 has passed: the alert expired before it arrived",
		"polygon-covers-nothing.xml": `info[0].area[0]: the polygon or circle of "Biển Đông" covers no receiver`,
		"area-without-location.xml":  `info[0].area[0]: "Các xã ven biển" has no geocode, polygon or circle`,
		"no-area.xml":                "info[0].area: none: the alert targets nothing",
		"nothing-to-say.xml":         "info[0]: nothing to play",
		"audio-uri-only.xml":         "info[0].resource[0] is audio at a URL, which Loa does not fetch",
		"text-too-long.xml":          "info[0]: headline, description and instruction are 2", // 2xxx characters
	}
	areas, devices := inventory()
	for _, path := range fixtures(t, "unmappable") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation in this table", name)
			}
			m, err := Parse(readFixture(t, path))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := Map(m, areas, devices, now, Options{})
			if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), want) {
				t.Fatalf("got %v (%+v)\nwant invalid: %s", err, got, want)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	raw := readFixture(t, "testdata/valid/geocode.xml")
	pad := bytes.Repeat([]byte(" "), MaxSize-len(raw)+1)
	big := bytes.Replace(raw, []byte("</alert>"), append(pad, "</alert>"...), 1)
	if _, err := Parse(big); loa.ErrorCode(err) != loa.ETOOLARGE {
		t.Fatalf("%d bytes: %v, want too_large", len(big), err)
	}
	// Exactly MaxSize bytes is read: it fails on its content, not its
	// size (a wrong root element, found at once, keeps the test fast).
	exact := append([]byte("<feed>"), bytes.Repeat([]byte(" "), MaxSize-len("<feed></feed>"))...)
	exact = append(exact, "</feed>"...)
	if _, err := Parse(exact); len(exact) != MaxSize || loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(err.Error(), "<feed>") {
		t.Fatalf("%d bytes: %v", len(exact), err)
	}
}

// A message whose every info block is in another language plays the
// first; a later Vietnamese block wins over an earlier English one (the
// typhoon fixture); pretty-printing whitespace around values is ignored.
func TestParseWhitespaceAndLanguage(t *testing.T) {
	raw := readFixture(t, "testdata/valid/geocode.xml")
	raw = bytes.Replace(raw, []byte("<urgency>Immediate</urgency>"), []byte("<urgency>\n      Immediate\n    </urgency>"), 1)
	raw = bytes.Replace(raw, []byte("<language>vi-VN</language>"), []byte("<language>en</language>"), 1)
	m, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	areas, devices := inventory()
	got, err := Map(m, areas, devices, now, Options{})
	if err != nil || got.Alert.Level != loa.AlertEmergency {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestMapLevelRule(t *testing.T) {
	raw := string(readFixture(t, "testdata/valid/geocode.xml"))
	areas, devices := inventory()
	for _, c := range []struct{ urgency, severity, level string }{
		{"Immediate", "Extreme", loa.AlertEmergency},
		{"Immediate", "Severe", loa.AlertEmergency},
		{"Immediate", "Moderate", loa.AlertPriority},
		{"Immediate", "Minor", loa.AlertPriority},
		{"Immediate", "Unknown", loa.AlertPriority},
		{"Expected", "Extreme", loa.AlertPriority},
		{"Future", "Severe", loa.AlertPriority},
		{"Unknown", "Extreme", loa.AlertPriority},
	} {
		s := strings.Replace(raw, "<urgency>Immediate", "<urgency>"+c.urgency, 1)
		s = strings.Replace(s, "<severity>Extreme", "<severity>"+c.severity, 1)
		m, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Map(m, areas, devices, now, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Alert.Level != c.level {
			t.Errorf("%s+%s: %s, want %s", c.urgency, c.severity, got.Alert.Level, c.level)
		}
	}
}

func TestMapStatuses(t *testing.T) {
	raw := string(readFixture(t, "testdata/valid/geocode.xml"))
	areas, devices := inventory()
	for _, c := range []struct {
		status, msgType string
		test, silent    bool
	}{
		{"Actual", "Alert", false, false},
		{"Exercise", "Alert", true, false},
		{"Test", "Alert", true, false},
		{"System", "Alert", false, true},
		{"Draft", "Alert", false, true},
		{"Actual", "Ack", false, true},
		{"Actual", "Error", false, true},
	} {
		s := strings.Replace(raw, "<status>Actual", "<status>"+c.status, 1)
		s = strings.Replace(s, "<msgType>Alert", "<msgType>"+c.msgType, 1)
		m, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Map(m, areas, devices, now, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if (got.Silent != "") != c.silent || (!c.silent && got.Alert.Test != c.test) {
			t.Errorf("%s/%s: %+v", c.status, c.msgType, got)
		}
	}
}

// A far-future expiry is brought in to MaxExpiry, which the alert
// service's limit allows.
func TestMapClampsExpiry(t *testing.T) {
	raw := strings.Replace(string(readFixture(t, "testdata/valid/geocode.xml")),
		"<expires>2026-10-12T18:00:00+07:00", "<expires>2026-10-20T18:00:00+07:00", 1)
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	areas, devices := inventory()
	got, err := Map(m, areas, devices, now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(24 * time.Hour); !got.Alert.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", got.Alert.ExpiresAt, want)
	}
	if err := got.Alert.Validate(now); err != nil {
		t.Error(err)
	}
}

// A message with no expires is good for an hour after it was sent: an
// old one replayed does not sound.
func TestMapStaleWithoutExpires(t *testing.T) {
	m, err := Parse(readFixture(t, "testdata/valid/circle.xml")) // sent 06:05, no expires
	if err != nil {
		t.Fatal(err)
	}
	areas, devices := inventory()
	_, err = Map(m, areas, devices, m.SentAt.Add(61*time.Minute), Options{})
	if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), "sent: 2026-10-12T06:05:00+07:00 is more than 1h0m0s ago and info[0] has no expires") {
		t.Fatalf("got %v", err)
	}
}

func TestTitleCutAtCharacter(t *testing.T) {
	long := strings.Repeat("Bão ", 100)
	got := title(&Info{Headline: long})
	if len(got) > loa.MaxAlertTitle || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("%d bytes: %q", len(got), got)
	}
	if got := title(&Info{Event: "Bão"}); got != "Bão" {
		t.Errorf("event as title: %q", got)
	}
}

// An info parameter LOA_STORED_CODE names a stored message the alert
// plays from receivers' storage where it is held; a bad code is refused.
func TestMapStoredCode(t *testing.T) {
	raw := string(readFixture(t, "testdata/valid/geocode.xml"))
	areas, devices := inventory()
	for _, c := range []struct {
		value string
		code  int
		ok    bool
	}{{"12", 12, true}, {" 7 ", 7, true}, {"0", 0, false}, {"1000", 0, false}, {"bão", 0, false}} {
		s := strings.Replace(raw, "    <area>", "    <parameter><valueName>LOA_STORED_CODE</valueName><value>"+c.value+"</value></parameter>\n    <area>", 1)
		m, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Map(m, areas, devices, now, Options{})
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.value, err)
			continue
		}
		if c.ok && (got.Alert.StoredCode != c.code || got.Alert.Content.Text == "") {
			t.Errorf("%q: stored code %d, content %+v", c.value, got.Alert.StoredCode, got.Alert.Content)
		}
	}
}
