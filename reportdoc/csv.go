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
func WriteCSV(w io.Writer, r *loa.BroadcastReport, loc *time.Location) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	out := csv.NewWriter(w)
	out.UseCRLF = true
	_ = out.Write([]string{Title})
	for _, h := range Header(r, loc) {
		_ = out.Write(h[:])
	}
	for _, s := range Sections(r, loc) {
		_ = out.Write([]string{})
		_ = out.Write([]string{s.Title})
		_ = out.Write(s.Columns)
		for _, row := range s.Rows {
			line := make([]string, len(row))
			for i, v := range row {
				line[i] = text(v)
			}
			_ = out.Write(line)
		}
	}
	_ = out.Write([]string{})
	for _, n := range Notes {
		_ = out.Write([]string{n})
	}
	out.Flush()
	return out.Error()
}
