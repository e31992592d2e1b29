package reportdoc

import (
	_ "embed"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/loa-broadcast/loa"
)

// The PDF's font: DejaVu Sans cut to Latin and Vietnamese (fonts/LICENSE).
var (
	//go:embed fonts/DejaVuSans-vi.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSans-Bold-vi.ttf
	fontBold []byte
)

// PDF page layout, in mm (A4 portrait).
const (
	pdfMargin = 15.0
	pdfRow    = 6.0
)

// WritePDF writes the report as a printable A4 document: the state's
// heading, the title, the unit and period, the tables, the notes and the
// signature block of the one who made it and the head of the unit.
func WritePDF(w io.Writer, r *loa.BroadcastReport, loc *time.Location) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	pdf.SetAutoPageBreak(true, pdfMargin)
	pdf.AddUTF8FontFromBytes("dejavu", "", fontRegular)
	pdf.AddUTF8FontFromBytes("dejavu", "B", fontBold)
	pdf.SetTitle(Title+" — "+r.Area.Name, true)
	pdf.SetAuthor(r.Station, true)
	pdf.SetCreator("Loa", true)
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("dejavu", "", 8)
		pdf.CellFormat(0, 5, unit(r)+" · "+day(r.From)+" – "+day(r.To)+" · Trang "+itoa(pdf.PageNo())+"/{nb}", "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	width, _ := pdf.GetPageSize()
	width -= 2 * pdfMargin

	pdf.SetFont("dejavu", "B", 10)
	pdf.CellFormat(0, 5, "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM", "", 1, "C", false, 0, "")
	pdf.SetFont("dejavu", "", 10)
	pdf.CellFormat(0, 5, "Độc lập – Tự do – Hạnh phúc", "", 1, "C", false, 0, "")
	pdf.Ln(6)
	pdf.SetFont("dejavu", "B", 14)
	pdf.CellFormat(0, 8, Title, "", 1, "C", false, 0, "")
	pdf.Ln(2)
	pdf.SetFont("dejavu", "", 10)
	for _, h := range Header(r, loc) {
		pdf.SetFont("dejavu", "B", 10)
		pdf.CellFormat(40, pdfRow, h[0]+":", "", 0, "L", false, 0, "")
		pdf.SetFont("dejavu", "", 10)
		pdf.CellFormat(0, pdfRow, h[1], "", 1, "L", false, 0, "")
	}

	for _, s := range Sections(r, loc) {
		table(pdf, s, width)
	}

	pdf.Ln(4)
	pdf.SetFont("dejavu", "", 8)
	for _, n := range Notes {
		pdf.MultiCell(0, 4, "• "+n, "", "L", false)
	}
	if pdf.GetY() > 240 {
		pdf.AddPage()
	}
	pdf.Ln(8)
	pdf.SetFont("dejavu", "B", 10)
	pdf.CellFormat(width/2, pdfRow, "NGƯỜI LẬP BÁO CÁO", "", 0, "C", false, 0, "")
	pdf.CellFormat(width/2, pdfRow, "THỦ TRƯỞNG ĐƠN VỊ", "", 1, "C", false, 0, "")
	pdf.SetFont("dejavu", "", 9)
	pdf.CellFormat(width/2, pdfRow, "(Ký, ghi rõ họ tên)", "", 0, "C", false, 0, "")
	pdf.CellFormat(width/2, pdfRow, "(Ký, ghi rõ họ tên, đóng dấu)", "", 1, "C", false, 0, "")
	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

// table draws one section: its title, a shaded header row repeated on a
// new page, then its rows, each cell cut to its column.
func table(pdf *fpdf.Fpdf, s Section, width float64) {
	_, pageH := pdf.GetPageSize()
	if pdf.GetY()+3*pdfRow > pageH-pdfMargin-8 {
		pdf.AddPage()
	}
	pdf.Ln(4)
	pdf.SetFont("dejavu", "B", 11)
	pdf.CellFormat(0, 7, s.Title, "", 1, "L", false, 0, "")
	var sum float64
	for _, w := range s.Widths {
		sum += w
	}
	widths := make([]float64, len(s.Widths))
	for i, w := range s.Widths {
		widths[i] = width * w / sum
	}
	header := func() {
		pdf.SetFont("dejavu", "B", 8)
		pdf.SetFillColor(225, 232, 240)
		for i, c := range s.Columns {
			pdf.CellFormat(widths[i], pdfRow, fit(pdf, c, widths[i]), "1", 0, "C", true, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("dejavu", "", 8)
	}
	header()
	if len(s.Rows) == 0 {
		pdf.CellFormat(width, pdfRow, "Không có", "1", 1, "C", false, 0, "")
		return
	}
	for _, row := range s.Rows {
		if pdf.GetY()+pdfRow > pageH-pdfMargin-8 {
			pdf.AddPage()
			header()
		}
		for i, v := range row {
			align := "R"
			if _, ok := v.(string); ok {
				align = "L"
			}
			pdf.CellFormat(widths[i], pdfRow, fit(pdf, printed(v), widths[i]), "1", 0, align, false, 0, "")
		}
		pdf.Ln(-1)
	}
}

// fit cuts s with an ellipsis to fit a cell w mm wide (with its margins).
func fit(pdf *fpdf.Fpdf, s string, w float64) string {
	room := w - 2.2
	if pdf.GetStringWidth(s) <= room {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && pdf.GetStringWidth(string(r)+"…") > room {
		r = r[:len(r)-1]
	}
	return strings.TrimSpace(string(r)) + "…"
}

func itoa(n int) string { return text(n) }
