package reportdoc

import (
	"fmt"
	"io"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/loa-broadcast/loa"
)

// WriteXLSX writes the report as a workbook: the header and the summary
// on the first sheet, each other section on a sheet of its own; numbers
// are numbers, so the province can sum them.
func WriteXLSX(w io.Writer, r *loa.BroadcastReport, loc *time.Location) error {
	f := excelize.NewFile()
	defer f.Close()
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	title, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}})
	if err != nil {
		return err
	}
	for i, s := range Sections(r, loc) {
		sheet := s.Sheet
		row := 1
		if i == 0 {
			if err := f.SetSheetName("Sheet1", sheet); err != nil {
				return err
			}
			_ = f.SetCellValue(sheet, "A1", Title)
			_ = f.SetCellStyle(sheet, "A1", "A1", title)
			row = 2
			for _, h := range Header(r, loc) {
				_ = f.SetSheetRow(sheet, cell(1, row), &[]any{h[0], h[1]})
				row++
			}
			row++
		} else if _, err := f.NewSheet(sheet); err != nil {
			return err
		}
		_ = f.SetCellValue(sheet, cell(1, row), s.Title)
		_ = f.SetCellStyle(sheet, cell(1, row), cell(1, row), bold)
		row++
		cols := make([]any, len(s.Columns))
		for j, c := range s.Columns {
			cols[j] = c
		}
		_ = f.SetSheetRow(sheet, cell(1, row), &cols)
		_ = f.SetCellStyle(sheet, cell(1, row), cell(len(cols), row), bold)
		row++
		for _, cells := range s.Rows {
			if err := f.SetSheetRow(sheet, cell(1, row), &cells); err != nil {
				return err
			}
			row++
		}
		if i == 0 {
			row++
			for _, n := range Notes {
				_ = f.SetCellValue(sheet, cell(1, row), n)
				row++
			}
		}
		for j, wd := range s.Widths {
			name, _ := excelize.ColumnNumberToName(j + 1)
			_ = f.SetColWidth(sheet, name, name, 12*wd)
		}
	}
	if err := f.SetDocProps(&excelize.DocProperties{Title: Title + " — " + r.Area.Name, Creator: "Loa"}); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

// cell names the cell at column col (1-based) and row.
func cell(col, row int) string {
	name, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		panic(fmt.Sprintf("cell %d,%d: %v", col, row, err))
	}
	return name
}
