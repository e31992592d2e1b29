package api

import (
	"cmp"
	"encoding/csv"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// playLogEventWords are the play log's events as the monthly report
// names them (the console's glossary says the same, web/i18n/vi.json).
var playLogEventWords = map[string]string{
	loa.PlayStarted:   "bắt đầu",
	loa.PlayEnded:     "kết thúc",
	loa.PlayStopped:   "dừng",
	loa.PlayFailed:    "lỗi",
	loa.PlayPreempted: "bị chèn",
	loa.PlayMissed:    "bỏ lỡ",
	loa.PlayResumed:   "phát tiếp",
	loa.PlaySkipped:   "bỏ qua",
	loa.PlayAired:     "đã phát (thiết bị xác nhận)",
}

// playLogCSVHeader names the columns in Vietnamese, each with its English
// name, for the monthly report.
var playLogCSVHeader = []string{
	"Thời gian (Time)", "Sự kiện (Event)", "Nội dung (Content)", "Khu vực (Areas)",
	"Thiết bị (Devices)", "Người/nguồn (By)", "Chi tiết (Detail)", "Mã phiên (Session)",
}

// writePlayLogCSV writes entries as CSV for a spreadsheet: UTF-8 with a
// byte order mark (Excel then reads Vietnamese right), times dd/MM/yyyy
// HH:mm:ss in the station's zone, content and areas by name.
func (s *Server) writePlayLogCSV(w http.ResponseWriter, r *http.Request, c *call, entries []loa.PlayLogEntry) error {
	mediaName := map[string]string{}
	if s.Media != nil {
		list, err := s.Media.MediaList(r.Context())
		if err != nil {
			return err
		}
		for _, m := range list {
			mediaName[m.ID] = m.Name
		}
	}
	playlistName := map[string]string{}
	if s.Playlists != nil {
		list, err := s.Playlists.Playlists(r.Context())
		if err != nil {
			return err
		}
		for _, p := range list {
			playlistName[p.ID] = p.Name
		}
	}
	if _, err := c.areaList(); err != nil {
		return err
	}
	areaName := func(id string) string {
		if a := c.tree[id]; a != nil {
			return a.Name
		}
		return id
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="nhat-ky-phat-thanh.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("\uFEFF"))
	out := csv.NewWriter(w)
	out.UseCRLF = true // what Excel writes
	_ = out.Write(playLogCSVHeader)
	for _, e := range entries {
		content := ""
		switch {
		case e.Content.PlaylistID != "":
			content = "▶ " + cmp.Or(playlistName[e.Content.PlaylistID], e.Content.PlaylistID)
		case e.Content.MediaID != "":
			content = cmp.Or(mediaName[e.Content.MediaID], e.Content.MediaID)
		case strings.HasPrefix(e.By, "alert:"):
			content = "Cảnh báo"
		}
		areas := make([]string, len(e.Areas))
		for i, a := range e.Areas {
			areas[i] = areaName(a)
		}
		_ = out.Write([]string{
			e.At.In(stationZone).Format("02/01/2006 15:04:05"), cmp.Or(playLogEventWords[e.Event], e.Event), content,
			strings.Join(areas, ", "), strings.Join(e.Devices, ", "), e.By, e.Detail, e.SessionID,
		})
	}
	out.Flush()
	return nil // a write error is the client gone: nothing to answer
}
