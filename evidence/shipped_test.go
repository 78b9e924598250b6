package evidence

import (
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// The shipped SOC 2 and SOX catalogues: every seed row reaches the
// workbook, customer rows never pass, and an uncovered product row is a gap.
func TestShippedCatalogues(t *testing.T) {
	cats, err := frameworks.Load()
	if err != nil {
		t.Fatal(err)
	}
	// One passing check per row, so a customer row's status can only come
	// from its responsibility.
	r := provision.Results{Target: "/", Finished: t0}
	for _, c := range cats {
		for _, row := range c.Rows {
			r.Findings = append(r.Findings, provision.Finding{ControlID: "test.all", Title: "covers every row",
				Rows: []string{c.Key(row)}, Property: c.Key(row), Expected: "x", Actual: "x", Status: provision.Pass})
		}
	}
	for name, res := range map[string]provision.Results{"all covered": r, "nothing covered": {Target: "/"}} {
		t.Run(name, func(t *testing.T) {
			m, err := Build(res, cats)
			if err != nil {
				t.Fatal(err)
			}
			for _, fw := range m.Frameworks {
				for _, row := range fw.Rows {
					want := map[frameworks.Responsibility]RowStatus{frameworks.Customer: RowCustomer, frameworks.Shared: RowPass, frameworks.Product: RowPass}[row.Responsibility]
					if len(res.Findings) == 0 && row.Responsibility != frameworks.Customer {
						want = RowNotCovered
					}
					if row.Status != want {
						t.Errorf("%s (%s): %s, want %s", row.Key, row.Responsibility, row.Status, want)
					}
				}
			}
			path := filepath.Join(t.TempDir(), "m.xlsx")
			if err := WriteXLSX(path, m); err != nil {
				t.Fatal(err)
			}
			f, err := excelize.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, fw := range m.Frameworks {
				checkSheet(t, f, fw)
			}
		})
	}
}
