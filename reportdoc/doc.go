// Package reportdoc renders a broadcast report (loa.BroadcastReport) as
// the documents a commune or province sends up: CSV (UTF-8 with a byte
// order mark, for Excel), XLSX (excelize) and a printable PDF (fpdf with a
// DejaVu Sans subset covering Vietnamese, fonts/). All three show the same
// sections, built once by Sections; the words are Vietnamese.
// It imports only the root package.
package reportdoc

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// Title is the document's title.
const Title = "BÁO CÁO HOẠT ĐỘNG TRUYỀN THANH CƠ SỞ"

// Section is one table of the report: a title, column names, rows. A
// cell is a string, an int, a uint64 or a float64 (None for "no value").
type Section struct {
	Sheet   string // the XLSX sheet's name (≤ 31 characters)
	Title   string
	Columns []string
	Rows    [][]any
	Widths  []float64 // relative column widths for the PDF
}

// None is the cell of a number that has nothing to divide by (-1 in the report).
const None = "—"

var categoryWords = map[string]string{
	loa.CategoryProgramme: "Theo lịch",
	loa.CategoryManual:    "Phát thủ công",
	loa.CategoryAlert:     "Cảnh báo",
	loa.CategoryFallback:  "Chương trình nền",
	loa.CategoryLive:      "Phát trực tiếp",
	loa.CategoryRelay:     "Tiếp sóng",
}

var bandWords = map[string]string{
	loa.BandEmergency:  "Khẩn cấp",
	loa.BandPriority:   "Ưu tiên",
	loa.BandNormal:     "Thông thường",
	loa.BandBackground: "Nền",
}

var whyWords = map[string]string{
	loa.PlayMissed:      "Lịch không chạy",
	"not_aired":         "Không loa nào phát",
	loa.PlayStopped:     "Bị dừng giữa chừng",
	loa.SessionFailed:   "Lỗi khi phát",
	loa.ReasonPreempted: "Bị chương trình ưu tiên hơn chèn",
	loa.ReasonPartial:   "Phát không trọn",
}

var levelWords = map[string]string{
	loa.AlertEmergency: "Khẩn cấp",
	loa.AlertPriority:  "Ưu tiên",
}

var alarmWords = map[string]string{
	loa.AlarmOffline:       "Mất kết nối",
	loa.AlarmStreamLoss:    "Mất gói âm thanh",
	loa.AlarmAmpFault:      "Lỗi bộ khuếch đại",
	loa.AlarmTemperature:   "Quá nhiệt",
	loa.AlarmTestFailed:    "Kiểm tra loa không đạt",
	loa.AlarmPlainReceiver: "Không mã hoá luồng",
	loa.AlarmOutOfSync:     "Lệch đồng bộ",
	loa.AlarmMainsLost:     "Mất điện lưới",
	loa.AlarmLowBattery:    "Pin yếu",
}

var kindWords = map[string]string{
	loa.AreaProvince: "Tỉnh",
	loa.AreaCommune:  "Xã",
	loa.AreaCluster:  "Thôn/cụm loa",
}

func word(m map[string]string, k string) string { return cmp.Or(m[k], k) }

// Header is the lines above the tables: station, unit, period, when made.
func Header(r *loa.BroadcastReport, loc *time.Location) [][2]string {
	return [][2]string{
		{"Đài truyền thanh", r.Station},
		{"Đơn vị", unit(r)},
		{"Kỳ báo cáo", "từ " + day(r.From) + " đến " + day(r.To)},
		{"Lập lúc", r.GeneratedAt.In(loc).Format("02/01/2006 15:04")},
	}
}

// unit is the area's name with its kind ("Xã Bình Châu"), unless the name
// already starts with an administrative word (Xã, Phường, Thị trấn, Tỉnh…).
func unit(r *loa.BroadcastReport) string {
	name := strings.ToLower(r.Area.Name)
	for _, w := range []string{"xã", "phường", "thị trấn", "tỉnh", "thành phố", "thôn", "cụm", "bản", "ấp", "tổ"} {
		if strings.HasPrefix(name, w+" ") {
			return r.Area.Name
		}
	}
	return word(kindWords, r.Kind) + " " + r.Area.Name
}

// day turns YYYY-MM-DD into dd/MM/yyyy.
func day(s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("02/01/2006")
}

// num is a percentage or a mean that may be -1 (nothing to divide by).
func num(x float64) any {
	if x < 0 {
		return None
	}
	return x
}

// mb is bytes in megabytes (10^6), to 0.01.
func mb(b uint64) float64 { return float64(b/10_000) / 100 }

// Sections lays the report out as tables, in the order of the documents.
func Sections(r *loa.BroadcastReport, loc *time.Location) []Section {
	at := func(t time.Time) string { return t.In(loc).Format("02/01/2006 15:04") }
	var out []Section
	out = append(out, Section{Sheet: "Tổng hợp", Title: "I. Tổng hợp", Columns: []string{"Chỉ tiêu", "Giá trị"}, Widths: []float64{3, 1},
		Rows: [][]any{
			{"Số chương trình đã phát", r.Aired.Programmes},
			{"Số giờ phát", r.Aired.Hours},
			{"Số giờ phát × số loa đã phát", r.Aired.ReceiverHours},
			{"Chương trình bị lỡ", r.Missed.Total},
			{"   trong đó: lịch không chạy", r.Missed.Occurrences},
			{"   trong đó: không loa nào phát", r.Missed.NotAired},
			{"Chương trình bị cắt ngang", r.Cut},
			{"Số bản tin cảnh báo", r.Alerts.Count},
			{"Tỷ lệ loa nhận đủ cảnh báo (%)", num(r.Alerts.RatePct)},
			{"Tỷ lệ thời gian loa hoạt động (%)", num(r.Availability.Pct)},
			{"Sự cố phát sinh", r.Alarms.Raised},
			{"Sự cố đã khắc phục", r.Alarms.Repaired},
			{"Sự cố chưa khắc phục", r.Alarms.Open},
			{"Thời gian khắc phục trung bình (phút)", num(r.Alarms.MTTRMinutes)},
			{"Dữ liệu âm thanh đã nhận, ước tính (MB)", mb(r.Data.Bytes)},
		}})

	cat := Section{Sheet: "Theo loại", Title: "II. Giờ phát theo loại chương trình", Columns: []string{"Loại chương trình", "Số chương trình", "Số giờ"}, Widths: []float64{3, 1, 1}}
	for _, b := range r.Aired.ByCategory {
		cat.Rows = append(cat.Rows, []any{word(categoryWords, b.Key), b.Programmes, b.Hours})
	}
	out = append(out, cat)
	band := Section{Sheet: "Theo mức ưu tiên", Title: "III. Giờ phát theo mức ưu tiên", Columns: []string{"Mức ưu tiên", "Số chương trình", "Số giờ"}, Widths: []float64{3, 1, 1}}
	for _, b := range r.Aired.ByBand {
		band.Rows = append(band.Rows, []any{word(bandWords, b.Key), b.Programmes, b.Hours})
	}
	out = append(out, band)

	n := 4
	roman := func() string {
		s := []string{"IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"}[n-4]
		n++
		return s
	}
	if len(r.Communes) > 0 {
		c := Section{Sheet: "Theo xã", Title: roman() + ". Theo xã", Widths: []float64{2.4, 1, 0.8, 0.7, 0.7, 1, 1, 1},
			Columns: []string{"Xã", "Chương trình", "Số giờ", "Bị lỡ", "Bị cắt", "Nhận cảnh báo (%)", "Loa hoạt động (%)", "Khắc phục TB (phút)"}}
		for _, s := range r.Communes {
			c.Rows = append(c.Rows, []any{s.Name, s.Programmes, s.Hours, s.Missed, s.Cut, num(s.AlertRatePct), num(s.AvailabilityPct), num(s.MTTRMinutes)})
		}
		out = append(out, c)
	}

	lost := Section{Sheet: "Bị lỡ, bị cắt", Title: roman() + ". Chương trình bị lỡ hoặc bị cắt", Widths: []float64{1.2, 1, 2, 1.8},
		Columns: []string{"Thời gian", "Loại", "Nội dung", "Lý do"}}
	for _, p := range r.Missed.List {
		lost.Rows = append(lost.Rows, []any{at(p.At), word(categoryWords, p.Category), p.Content, word(whyWords, p.Why)})
	}
	for _, p := range r.CutList {
		lost.Rows = append(lost.Rows, []any{at(p.At), word(categoryWords, p.Category), p.Content, word(whyWords, p.Why)})
	}
	out = append(out, lost)

	al := Section{Sheet: "Cảnh báo", Title: roman() + ". Bản tin cảnh báo", Widths: []float64{1.2, 2.4, 0.8, 0.7, 0.7, 0.8},
		Columns: []string{"Thời gian", "Tiêu đề", "Mức", "Số loa", "Nhận đủ", "Tỷ lệ (%)"}}
	for _, a := range r.Alerts.List {
		title := a.Title
		if a.Test {
			title += " (diễn tập)"
		}
		al.Rows = append(al.Rows, []any{at(a.At), title, word(levelWords, a.Level), a.Receivers, a.Delivered, num(a.RatePct)})
	}
	out = append(out, al)

	vil := Section{Sheet: "Hoạt động theo thôn", Title: roman() + ". Thời gian hoạt động theo thôn", Widths: []float64{2.4, 0.7, 1, 1, 0.9},
		Columns: []string{"Thôn/cụm loa", "Số loa", "Giờ trực tuyến", "Giờ sử dụng", "Tỷ lệ (%)"}}
	for _, v := range r.Availability.Villages {
		vil.Rows = append(vil.Rows, []any{v.Name, v.Receivers, v.HoursOnline, v.HoursExpected, num(v.Pct)})
	}
	out = append(out, vil)

	data := map[string]loa.ReportReceiverData{}
	for _, d := range r.Data.Receivers {
		data[d.Device] = d
	}
	rx := Section{Sheet: "Theo thiết bị", Title: roman() + ". Theo thiết bị thu", Widths: []float64{1.1, 1.7, 0.9, 0.9, 0.8, 0.9},
		Columns: []string{"Mã thiết bị", "Tên", "Giờ trực tuyến", "Tỷ lệ (%)", "Gói tin", "Dữ liệu (MB)"}}
	for _, a := range r.Availability.Receivers {
		d := data[a.Device]
		rx.Rows = append(rx.Rows, []any{a.Device, a.Name, a.HoursOnline, num(a.Pct), d.Packets, mb(d.Bytes)})
	}
	out = append(out, rx)

	alarms := Section{Sheet: "Sự cố", Title: roman() + ". Sự cố theo loại", Widths: []float64{2.4, 1, 1, 1.2},
		Columns: []string{"Loại sự cố", "Phát sinh", "Đã khắc phục", "Khắc phục TB (phút)"}}
	for _, k := range r.Alarms.ByKind {
		alarms.Rows = append(alarms.Rows, []any{word(alarmWords, k.Kind), k.Raised, k.Repaired, num(k.MTTRMinutes)})
	}
	out = append(out, alarms)
	return out
}

// Notes are the lines under the tables: how the numbers are made.
var Notes = []string{
	"Số giờ phát: theo số khung âm thanh chính các loa báo đã phát; giờ của một chương trình là của loa phát lâu nhất.",
	"Tỷ lệ hoạt động: giờ trực tuyến (bản ghi sức khoẻ hằng giờ) trên giờ loa đang được sử dụng trong kỳ.",
	"Dữ liệu: ước tính từ số gói tin loa đã nhận, 120 byte một gói (136 byte khi mã hoá SRTP, thêm khoảng 13 %).",
}

// text is a cell as the CSV and the PDF show it.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// printed is a cell as the PDF shows it: Vietnamese writes a decimal comma.
func printed(v any) string {
	if x, ok := v.(float64); ok {
		return strings.Replace(text(x), ".", ",", 1)
	}
	return text(v)
}

// FileName is the documents' base name: bao-cao-<area>-<from>-<to>.
func FileName(r *loa.BroadcastReport) string {
	return "bao-cao-" + r.Area.ID + "-" + r.From + "-" + r.To
}
