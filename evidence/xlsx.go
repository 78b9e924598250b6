package evidence

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"
)

// Column widths in characters, in column order: short refs, wide prose.
var (
	frameworkWidths = []float64{14, 30, 26, 60, 16, 28, 22, 80, 50}
	controlWidths   = []float64{24, 50, 30, 16, 8}
)

// statusFill colours the Status cells so a reviewer scans for red.
var statusFill = map[string]string{
	string(RowPass):          "C6EFCE",
	string(RowFail):          "FFC7CE",
	string(RowNotApplicable): "EDEDED",
	string(RowCustomer):      "DDEBF7",
	string(RowNotCovered):    "FFEB9C",
	"warn":                   "FFEB9C",
}

// WriteXLSX writes the compliance matrix shaped like the seeds'
// downloadable spreadsheets: one sheet per framework ("SOC 2", "SOX") and a
// "Controls" sheet.
func WriteXLSX(path string, m Matrix) error {
	f := excelize.NewFile()
	defer f.Close()
	st, err := newXLSXStyles(f)
	if err != nil {
		return fmt.Errorf("evidence: xlsx %s: %w", path, err)
	}
	for _, fw := range m.Frameworks {
		if err := writeFrameworkSheet(f, st, fw); err != nil {
			return fmt.Errorf("evidence: xlsx %s: sheet %q: %w", path, SheetName(fw.ID), err)
		}
	}
	if err := writeControlsSheet(f, st, m.Controls); err != nil {
		return fmt.Errorf("evidence: xlsx %s: sheet Controls: %w", path, err)
	}
	// excelize starts with "Sheet1"; ours are all added, so drop it.
	if err := f.DeleteSheet("Sheet1"); err != nil {
		return fmt.Errorf("evidence: xlsx %s: %w", path, err)
	}
	f.SetActiveSheet(0)
	return saveXLSX(f, path)
}

// saveXLSX writes with mode 0644: excelize's SaveAs creates files
// executable (os.ModePerm), which an evidence archive should not carry.
func saveXLSX(f *excelize.File, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("evidence: xlsx save: %w", err)
	}
	if _, err := f.WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("evidence: xlsx save %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("evidence: xlsx save %s: %w", path, err)
	}
	return nil
}

// SheetName is the sheet a framework's rows go to: "SOC2" → "SOC 2".
func SheetName(id string) string {
	if id == "SOC2" {
		return "SOC 2"
	}
	return id
}

// frameworkHeader follows the seed tables' column names.
func frameworkHeader(id string) []any {
	title, group := "Category", "Criteria Group"
	if id == "SOX" {
		title, group = "Control Area", "Domain"
	}
	return []any{"Ref", title, group, "Capability", "Responsibility", "Covering controls", "Status", "Evidence", "Note"}
}

// maxCell is below Excel's 32,767-character cell limit, leaving room for
// the truncation notice.
const maxCell = 32000

// cellText cuts text that would not fit a cell and says so; excelize would
// otherwise cut it silently.
func cellText(s string) string {
	u := utf16.Encode([]rune(s))
	if len(u) <= maxCell {
		return s
	}
	kept := string(utf16.Decode(u[:maxCell]))
	return fmt.Sprintf("%s\n… truncated (%d more characters): the full evidence is in %s and %s", kept, len(u)-maxCell, FileJSON, FileHTML)
}

type xlsxStyles struct {
	header, wrap int
	status       map[string]int
}

func newXLSXStyles(f *excelize.File) (xlsxStyles, error) {
	st := xlsxStyles{status: map[string]int{}}
	var err error
	st.header, err = f.NewStyle(&excelize.Style{
		Font:      &excelize.Font{Bold: true, Color: "FFFFFF"},
		Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"1F4E78"}},
		Alignment: &excelize.Alignment{Vertical: "center", WrapText: true},
	})
	if err != nil {
		return st, fmt.Errorf("header style: %w", err)
	}
	st.wrap, err = f.NewStyle(&excelize.Style{Alignment: &excelize.Alignment{Vertical: "top", WrapText: true}})
	if err != nil {
		return st, fmt.Errorf("cell style: %w", err)
	}
	for status, colour := range statusFill {
		st.status[status], err = f.NewStyle(&excelize.Style{
			Font:      &excelize.Font{Bold: true},
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{colour}},
			Alignment: &excelize.Alignment{Vertical: "top"},
		})
		if err != nil {
			return st, fmt.Errorf("status style %s: %w", status, err)
		}
	}
	return st, nil
}

func writeFrameworkSheet(f *excelize.File, st xlsxStyles, fw Framework) error {
	rows := make([][]any, 0, len(fw.Rows))
	var statuses []string
	for _, r := range fw.Rows {
		rows = append(rows, []any{r.Ref, r.Title, r.Group, r.Capability, string(r.Responsibility),
			strings.Join(r.Controls, "\n"), string(r.Status), cellText(r.Evidence), r.Note})
		statuses = append(statuses, string(r.Status))
	}
	return writeTable(f, st, SheetName(fw.ID), frameworkHeader(fw.ID), frameworkWidths, rows, 7, statuses)
}

func writeControlsSheet(f *excelize.File, st xlsxStyles, cs []ControlSummary) error {
	rows := make([][]any, 0, len(cs))
	var statuses []string
	for _, c := range cs {
		rows = append(rows, []any{c.ID, c.Title, strings.Join(c.Rows, "\n"), string(c.Status), len(c.Findings)})
		statuses = append(statuses, string(c.Status))
	}
	return writeTable(f, st, "Controls", []any{"Control", "Title", "Rows", "Status", "Checks"}, controlWidths, rows, 4, statuses)
}

// writeTable writes a header and rows, freezes the header, adds an
// autofilter and colours column statusCol (1-based) by status.
func writeTable(f *excelize.File, st xlsxStyles, sheet string, header []any, widths []float64, rows [][]any, statusCol int, statuses []string) error {
	if _, err := f.NewSheet(sheet); err != nil {
		return err
	}
	if err := f.SetSheetRow(sheet, "A1", &header); err != nil {
		return err
	}
	for i, row := range rows {
		if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", i+2), &row); err != nil {
			return err
		}
	}
	last, err := excelize.CoordinatesToCellName(len(header), len(rows)+1)
	if err != nil {
		return err
	}
	lastCol := strings.TrimRight(last, "0123456789")
	if err := f.SetCellStyle(sheet, "A1", lastCol+"1", st.header); err != nil {
		return err
	}
	if len(rows) > 0 {
		if err := f.SetCellStyle(sheet, "A2", last, st.wrap); err != nil {
			return err
		}
	}
	if err := colourStatuses(f, st, sheet, statusCol, statuses); err != nil {
		return err
	}
	if err := setWidths(f, sheet, widths); err != nil {
		return err
	}
	if err := f.AutoFilter(sheet, "A1:"+last, nil); err != nil {
		return err
	}
	return f.SetPanes(sheet, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"})
}

func colourStatuses(f *excelize.File, st xlsxStyles, sheet string, col int, statuses []string) error {
	for i, s := range statuses {
		style, ok := st.status[s]
		if !ok {
			continue // an unknown status keeps the plain style; its text still says it
		}
		cell, err := excelize.CoordinatesToCellName(col, i+2)
		if err != nil {
			return err
		}
		if err := f.SetCellStyle(sheet, cell, cell, style); err != nil {
			return err
		}
	}
	return nil
}

func setWidths(f *excelize.File, sheet string, widths []float64) error {
	for i, w := range widths {
		col, err := excelize.ColumnNumberToName(i + 1)
		if err != nil {
			return err
		}
		if err := f.SetColWidth(sheet, col, col, w); err != nil {
			return err
		}
	}
	return nil
}
