package station

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/loa-broadcast/loa"
)

// NotifyMessage is one notification to one person: the e-mail's subject
// and body, or the SMS text (Text), with the link that acknowledges.
type NotifyMessage struct {
	Username string // who it is for
	To       string // an e-mail address, an E.164 number, or the username (webhook)
	Subject  string // e-mail subject
	Body     string // e-mail body (plain text)
	Text     string // the one-SMS text (also the webhook's)
	Link     string // acknowledges and stops the escalation (a console page)
	AlarmID  string
	RuleID   string
}

// alarmKindVi names each alarm kind in Vietnamese, as people are told.
var alarmKindVi = map[string]string{
	loa.AlarmOffline:          "Loa mất kết nối",
	loa.AlarmStreamLoss:       "Mất gói khi phát",
	loa.AlarmAmpFault:         "Lỗi bộ khuếch đại",
	loa.AlarmTemperature:      "Nhiệt độ cao",
	loa.AlarmTestFailed:       "Thử loa không đạt",
	loa.AlarmPlainReceiver:    "Loa không mã hoá luồng",
	loa.AlarmClockStep:        "Đồng hồ máy chủ bị chỉnh",
	loa.AlarmDiskSpace:        "Ổ đĩa sắp đầy",
	loa.AlarmNoAudience:       "Không loa nào phát",
	loa.AlarmOutOfSync:        "Loa lệch đồng bộ",
	loa.AlarmBrokerLink:       "Mất kết nối MQTT",
	loa.AlarmMainsLost:        "Mất điện lưới",
	loa.AlarmLowBattery:       "Pin yếu",
	loa.AlarmBulletinDeadline: "Bản tin ưu tiên chưa lên lịch",
	loa.AlarmBackupFailed:     "Sao lưu thất bại",
	loa.AlarmRelayFailover:    "Tiếp sóng chuyển nguồn dự phòng",
	loa.AlarmClusterNode:      "Nút cụm điều khiển không trả lời",
	loa.AlarmBlobMissing:      "Nút cụm thiếu tệp âm thanh",
}

// alarmTitle is the alarm's kind in Vietnamese ("Cảnh báo <kind>" for one
// this build does not name).
func alarmTitle(kind string) string {
	if t, ok := alarmKindVi[kind]; ok {
		return t
	}
	return "Cảnh báo " + kind
}

// alarmSubject is what the alarm is about: "<device name> (<area>)", or
// the station for a station alarm.
type alarmSubject struct {
	Device, Area string // names; Device empty for a station alarm
}

func (s alarmSubject) String() string {
	what := s.Device
	if what == "" {
		what = "Trạm"
	}
	if s.Area != "" {
		what += " - " + s.Area
	}
	return what
}

// renderAlarm writes the e-mail and the SMS about al, in Vietnamese, times
// in zone.
func renderAlarm(al *loa.Alarm, subj alarmSubject, link, consoleURL string, zone *time.Location) (subject, body, sms string) {
	title := alarmTitle(al.Kind)
	since := al.RaisedAt.In(zone)
	subject = fmt.Sprintf("[Loa] %s: %s", title, subj)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title)
	if subj.Device != "" {
		fmt.Fprintf(&b, "Thiết bị: %s\n", subj.Device)
	}
	if subj.Area != "" {
		fmt.Fprintf(&b, "Khu vực: %s\n", subj.Area)
	}
	fmt.Fprintf(&b, "Từ lúc: %s\n", since.Format("15:04 02/01/2006"))
	if al.Severity == loa.SeverityCritical {
		b.WriteString("Mức độ: nghiêm trọng\n")
	}
	if al.Msg != "" {
		fmt.Fprintf(&b, "Chi tiết: %s\n", al.Msg)
	}
	fmt.Fprintf(&b, "\nXác nhận đã biết (dừng báo tiếp cho người khác):\n%s\n", link)
	if consoleURL != "" {
		fmt.Fprintf(&b, "\nXem các cảnh báo: %s/#/alarms\n", consoleURL)
	}
	b.WriteString("\n-- \nThư tự động của Loa; không cần trả lời.\n")
	sms = fitSMS("Loa: "+title+" "+subj.String(), "từ "+since.Format("15:04 02/01"), link)
	return subject, b.String(), sms
}

// renderAlertDelivery writes the e-mail and the SMS about an alert that
// reached too few receivers.
func renderAlertDelivery(e *loa.NotifyEscalation, area, link, consoleURL string, zone *time.Location) (subject, body, sms string) {
	pct := 0
	if e.Receivers > 0 {
		pct = e.Reached * 100 / e.Receivers
	}
	at := e.Since.In(zone)
	subject = fmt.Sprintf("[Loa] Cảnh báo khẩn chỉ tới %d%% loa: %s", pct, e.Title)
	var b strings.Builder
	fmt.Fprintf(&b, "Cảnh báo khẩn \"%s\" đã kết thúc lúc %s.\n", e.Title, at.Format("15:04 02/01/2006"))
	fmt.Fprintf(&b, "Loa phát trọn: %d/%d (%d%%).\n", e.Reached, e.Receivers, pct)
	if area != "" {
		fmt.Fprintf(&b, "Khu vực: %s\n", area)
	}
	fmt.Fprintf(&b, "\nXác nhận đã biết (dừng báo tiếp cho người khác):\n%s\n", link)
	if consoleURL != "" {
		fmt.Fprintf(&b, "\nXem báo cáo phát: %s/#/alerts\n", consoleURL)
	}
	b.WriteString("\n-- \nThư tự động của Loa; không cần trả lời.\n")
	sms = fitSMS(fmt.Sprintf("Loa: Cảnh báo khẩn chỉ tới %d/%d loa: %s", e.Reached, e.Receivers, e.Title), "lúc "+at.Format("15:04 02/01"), link)
	return subject, b.String(), sms
}

// Lengths of one SMS.
const (
	smsGSM7Max = 160 // characters of the GSM 7-bit alphabet (an extension character counts 2)
	smsUCS2Max = 70  // UTF-16 units otherwise
)

// gsm7Basic is the GSM 03.38 basic character set; gsm7Ext the characters
// of its extension table (two septets each).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext   = "^{}\\[~]|€\f"
)

// SMSLength returns the length of text in its encoding's units, and
// whether it is GSM 7-bit (else UCS-2).
func SMSLength(text string) (n int, gsm7 bool) {
	n, gsm7 = 0, true
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			n++
		case strings.ContainsRune(gsm7Ext, r):
			n += 2
		default:
			gsm7 = false
		}
	}
	if !gsm7 {
		n = 0
		for _, r := range text {
			n += utf16.RuneLen(r)
		}
	}
	return n, gsm7
}

// FitsOneSMS reports whether text is one SMS: ≤ 160 GSM 7-bit characters
// or ≤ 70 UCS-2 units.
func FitsOneSMS(text string) bool {
	n, gsm7 := SMSLength(text)
	if gsm7 {
		return n <= smsGSM7Max
	}
	return n <= smsUCS2Max
}

// fitSMS joins what, when and the link into one SMS: with Vietnamese
// marks if that fits 70 UCS-2 units (it rarely does with a link), else
// without marks (as Vietnamese SMS are usually written) in 160 GSM 7-bit
// characters, shortening what first: the link is never cut.
func fitSMS(what, when, link string) string {
	join := func(w string) string { return w + " " + when + ". Xac nhan: " + link }
	if t := what + " " + when + ". Xác nhận: " + link; FitsOneSMS(t) {
		return t
	}
	what, when = withoutMarks(what), withoutMarks(when)
	t := join(what)
	for r := []rune(what); !FitsOneSMS(t) && len(r) > 8; {
		r = r[:len(r)-1]
		t = join(strings.TrimSpace(string(r)) + "..")
	}
	return t
}

// foldMarks maps each Vietnamese letter with a mark to its base letter.
var foldMarks = func() map[rune]rune {
	m := map[rune]rune{}
	for _, group := range []string{"aàáạảãâầấậẩẫăằắặẳẵ", "eèéẹẻẽêềếệểễ", "iìíịỉĩ", "oòóọỏõôồốộổỗơờớợởỡ", "uùúụủũưừứựửữ", "yỳýỵỷỹ", "dđ"} {
		rs := []rune(group)
		for _, r := range rs[1:] {
			m[r] = rs[0]
			m[unicode.ToUpper(r)] = unicode.ToUpper(rs[0])
		}
	}
	return m
}()

// withoutMarks drops Vietnamese diacritics (precomposed or combining),
// keeping case, and replaces what GSM 7-bit cannot carry with '?'.
func withoutMarks(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if base, ok := foldMarks[r]; ok {
			r = base
		}
		if !strings.ContainsRune(gsm7Basic, r) && !strings.ContainsRune(gsm7Ext, r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
