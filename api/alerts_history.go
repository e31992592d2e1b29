package api

import (
	"encoding/csv"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// alertPage is how GET /api/v1/alerts pages and shapes its answer.
type alertPage struct {
	offset, limit int
	report        bool // with each alert's per-receiver report
	csv           bool
}

const maxAlertOffset = 100000

func parseAlertPage(r *http.Request) (alertPage, error) {
	q := r.URL.Query()
	p := alertPage{limit: math.MaxInt, report: true}
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		p.csv, p.report = true, false
	default:
		return p, loa.Errorf(loa.EINVALID, "format: %s is neither json nor csv", strconv.Quote(f))
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return p, loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..1000")
		}
		p.limit = n
	}
	if raw := q.Get("offset"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > maxAlertOffset {
			return p, loa.Errorf(loa.EINVALID, "offset: must be an integer within 0..%d", maxAlertOffset)
		}
		p.offset = n
	}
	if raw := q.Get("report"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return p, loa.Errorf(loa.EINVALID, "report: must be true or false")
		}
		p.report = b && !p.csv
	}
	return p, nil
}

var alertLevelWords = map[string]string{loa.AlertEmergency: "Khẩn cấp", loa.AlertPriority: "Ưu tiên"}

var alertStateWords = map[string]string{
	loa.AlertActive: "đang phát", loa.AlertFinished: "đã xong", loa.AlertCancelled: "đã hủy", loa.AlertExpired: "hết hạn",
}

var alertCSVHeader = []string{
	"Thời gian gửi (Sent)", "Tiêu đề (Title)", "Mức (Level)", "Trạng thái (State)", "Diễn tập (Test)",
	"Khu vực (Areas)", "Thiết bị (Receivers)", "Đã phát xong (Finished)", "Lỗi hoặc hủy (Failed or cancelled)",
	"Người gửi (By)", "Kết thúc (Ended)", "Lý do (Reason)", "CAP", "Mã (Id)",
}

// writeAlertsCSV writes the alert history for a spreadsheet: UTF-8 with
// a byte order mark, times in the station's zone, Vietnamese words.
func writeAlertsCSV(w http.ResponseWriter, c *call, alerts []alertView) error {
	if _, err := c.areaList(); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="lich-su-canh-bao.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("\uFEFF"))
	out := csv.NewWriter(w)
	out.UseCRLF = true
	_ = out.Write(alertCSVHeader)
	const layout = "02/01/2006 15:04:05"
	for _, v := range alerts {
		a := v.Alert
		areas := make([]string, 0, len(a.Targets.Areas)+len(a.Targets.Devices))
		for _, id := range a.Targets.Areas {
			if ar := c.tree[id]; ar != nil {
				areas = append(areas, ar.Name)
			} else {
				areas = append(areas, id)
			}
		}
		areas = append(areas, a.Targets.Devices...)
		test, ended, capID := "", "", ""
		if a.Test {
			test = "có"
		}
		if !a.EndedAt.IsZero() {
			ended = a.EndedAt.In(stationZone).Format(layout)
		}
		if a.CAP != nil {
			capID = a.CAP.Identifier
		}
		all := v.Totals.All
		_ = out.Write([]string{
			a.CreatedAt.In(stationZone).Format(layout), a.Title, alertLevelWords[a.Level], alertStateWords[a.State], test,
			strings.Join(areas, ", "), strconv.Itoa(all.Receivers), strconv.Itoa(all.Finished), strconv.Itoa(all.Failed),
			a.CreatedBy, ended, a.Reason, capID, a.ID,
		})
	}
	out.Flush()
	return nil
}
