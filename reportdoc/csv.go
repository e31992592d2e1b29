package reportdoc

import (
	"encoding/csv"
	"io"
	"time"

	"github.com/loa-broadcast/loa"
)

// WriteCSV writes the report as one CSV file for a spreadsheet: UTF-8 with
// a byte order mark (Excel then reads Vietnamese right), CRLF lines, the
// header lines, then each section under its title, a blank line between.
// Numbers keep a decimal point, so other systems read them as numbers.
// Every line has as many fields as the widest section (strict CSV readers
// want a rectangle).
func WriteCSV(w io.Writer, r *loa.BroadcastReport, loc *time.Location) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	sections := Sections(r, loc)
	width := 2
	for _, s := range sections {
		width = max(width, len(s.Columns))
	}
	out := csv.NewWriter(w)
	out.UseCRLF = true
	line := func(cells ...string) {
		_ = out.Write(append(cells, make([]string, width-len(cells))...))
	}
	line(Title)
	for _, h := range Header(r, loc) {
		line(h[:]...)
	}
	for _, s := range sections {
		line()
		line(s.Title)
		line(s.Columns...)
		for _, row := range s.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = text(v)
			}
			line(cells...)
		}
	}
	line()
	for _, n := range Notes {
		line(n)
	}
	out.Flush()
	return out.Error()
}
