package evidence

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// Open the workbook as a reader would and find every catalogue row.
func TestXLSXReadBack(t *testing.T) {
	m := mustBuild(t)
	path := filepath.Join(t.TempDir(), "matrix.xlsx")
	if err := WriteXLSX(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatalf("workbook does not open: %v", err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 3 || got[0] != "SOC 2" || got[1] != "SOX" || got[2] != "Controls" {
		t.Fatalf("sheets = %v, want [SOC 2 SOX Controls]", got)
	}
	for _, fw := range m.Frameworks {
		checkSheet(t, f, fw)
	}
	rows, err := f.GetRows("Controls")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(m.Controls) || rows[1][0] != "audit.journald" || rows[1][3] != "fail" {
		t.Errorf("Controls sheet = %v", rows)
	}
}

func TestXLSXLongEvidenceIsCutVisibly(t *testing.T) {
	m := Matrix{Frameworks: []Framework{{ID: "SOX", Rows: []Row{{Ref: "R", Status: RowPass, Evidence: strings.Repeat("é", 40000)}}}}}
	path := filepath.Join(t.TempDir(), "m.xlsx")
	if err := WriteXLSX(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.GetCellValue("SOX", "H2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(v, "truncated (8000 more characters): the full evidence is in results.json and report.html") {
		t.Errorf("long evidence cell ends %q", v[len(v)-120:])
	}
}

func checkSheet(t *testing.T, f *excelize.File, fw Framework) {
	t.Helper()
	sheet := SheetName(fw.ID)
	rows, err := f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != "Ref" || rows[0][6] != "Status" || rows[0][7] != "Evidence" {
		t.Errorf("%s header = %v", sheet, rows[0])
	}
	byRef := map[string][]string{}
	for _, r := range rows[1:] {
		byRef[r[0]] = r
	}
	for _, want := range fw.Rows {
		got, ok := byRef[want.Ref]
		if !ok {
			t.Errorf("%s: row %s missing", sheet, want.Ref)
			continue
		}
		if got[4] != string(want.Responsibility) || got[6] != string(want.Status) {
			t.Errorf("%s %s: responsibility %q status %q, want %q %q", sheet, want.Ref, got[4], got[6], want.Responsibility, want.Status)
		}
	}
	panes, err := f.GetPanes(sheet)
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("%s: header not frozen: %+v %v", sheet, panes, err)
	}
	filtered := false
	for _, dn := range f.GetDefinedName() {
		filtered = filtered || (dn.Name == "_xlnm._FilterDatabase" && dn.Scope == sheet)
	}
	if !filtered {
		t.Errorf("%s: no autofilter", sheet)
	}
	// Status cells are coloured: each status has its own non-default style.
	styleOf := map[string]int{}
	seen := map[int]string{}
	for i, r := range fw.Rows {
		cell, _ := excelize.CoordinatesToCellName(7, i+2)
		id, err := f.GetCellStyle(sheet, cell)
		if err != nil {
			t.Fatal(err)
		}
		st := string(r.Status)
		if prev, ok := styleOf[st]; ok && prev != id {
			t.Errorf("%s: %s cells styled inconsistently", sheet, st)
		}
		if other, ok := seen[id]; id == 0 || (ok && other != st) {
			t.Errorf("%s %s: status cell %s not coloured by status (style %d shared with %q)", sheet, r.Ref, cell, id, other)
		}
		styleOf[st], seen[id] = id, st
	}
}
