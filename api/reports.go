package api

import (
	"bytes"
	"cmp"
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/reportdoc"
)

// reportFormats are the documents ?format= may ask for, with their media types.
var reportFormats = map[string]string{
	"csv":  "text/csv; charset=utf-8",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"pdf":  "application/pdf",
}

// broadcastReport answers GET /api/v1/reports/broadcast: the broadcast
// report (docs/reports.md) of ?area= (default: the caller's scope) over
// ?from=&to= (dates in the station's zone, to included) or ?month=YYYY-MM
// (default: last month), as JSON or ?format=csv|xlsx|pdf.
func (s *Server) broadcastReport(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	format := q.Get("format")
	if _, ok := reportFormats[format]; !ok && format != "" && format != "json" {
		return loa.Errorf(loa.EINVALID, "format: %s is none of json, csv, xlsx, pdf", strconv.Quote(format))
	}
	start, end, err := reportPeriod(q.Get("from"), q.Get("to"), q.Get("month"), s.now())
	if err != nil {
		return err
	}
	area := q.Get("area")
	switch {
	case area == "" && c.scoped():
		area = c.tok.AreaID
	case area == "":
		return loa.Errorf(loa.EINVALID, "area: required: name the commune or province to report")
	}
	if err := loa.ValidateID("area", area); err != nil {
		return err
	}
	if ok, err := c.areaInScope(area); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area: %s is outside your scope (%s)", area, c.tok.AreaID)
	}
	if s.Reports == nil {
		return errUnavailable("report")
	}
	rep, err := s.Reports.BroadcastReport(r.Context(), area, start, end)
	if err != nil {
		return err
	}
	rep.Station = cmp.Or(s.StationName, DefaultStationName)
	rep.From, rep.To = start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly)
	rep.Zone = stationZone.String()
	if format == "" || format == "json" {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	// Rendered whole before the answer starts, so a failure is still an error answer.
	var buf bytes.Buffer
	switch format {
	case "csv":
		err = reportdoc.WriteCSV(&buf, rep, stationZone)
	case "xlsx":
		err = reportdoc.WriteXLSX(&buf, rep, stationZone)
	case "pdf":
		err = reportdoc.WritePDF(&buf, rep, stationZone)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", reportFormats[format])
	h.Set("Content-Disposition", `attachment; filename="`+reportdoc.FileName(rep)+"."+format+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// reportPeriod reads a report's period: from and to (dates, to included),
// or a month, or by default last month, in the station's zone.
func reportPeriod(from, to, month string, now time.Time) (start, end time.Time, err error) {
	switch {
	case month != "" && (from != "" || to != ""):
		return start, end, loa.Errorf(loa.EINVALID, "month: name either month or from and to")
	case month != "":
		m, err := time.ParseInLocation("2006-01", month, stationZone)
		if err != nil {
			return start, end, loa.Errorf(loa.EINVALID, "month: %s is not a month like 2026-11", strconv.Quote(month))
		}
		return m, m.AddDate(0, 1, 0), nil
	case from == "" && to == "":
		y, m, _ := now.In(stationZone).Date()
		end = time.Date(y, m, 1, 0, 0, 0, 0, stationZone)
		return end.AddDate(0, -1, 0), end, nil
	case from == "" || to == "":
		return start, end, loa.Errorf(loa.EINVALID, "from, to: name both (or month)")
	}
	if start, err = parseDate("from", from); err != nil {
		return start, end, err
	}
	if end, err = parseDate("to", to); err != nil {
		return start, end, err
	}
	end = end.AddDate(0, 0, 1)
	if !end.After(start) {
		return start, end, loa.Errorf(loa.EINVALID, "to: before from")
	}
	if end.Sub(start) > loa.MaxReportDays*24*time.Hour {
		return start, end, loa.Errorf(loa.EINVALID, "to: a report covers at most %d days", loa.MaxReportDays)
	}
	return start, end, nil
}
