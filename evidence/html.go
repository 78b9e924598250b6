package evidence

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/bulwark-appliance/bulwark/provision"
)

// report.html.tmpl is static and self-contained (inline CSS, no scripts,
// no external fetches) so a reviewer can open it offline from an archive.
//
//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"name":    FindingName,
	"sheet":   SheetName,
	"utc":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"seconds": func(d time.Duration) string { return seconds(d) },
}).Parse(reportTemplate))

type reportData struct {
	Results  provision.Results
	Matrix   Matrix
	Counts   Counts
	Statuses []RowStatus
	Checks   map[string]int // keyed by status text, for the template
}

// WriteHTML writes the static HTML report: summary counts, a table per
// framework, and every control's findings with their evidence.
func WriteHTML(w io.Writer, r provision.Results, m Matrix) error {
	d := reportData{
		Results:  r,
		Matrix:   m,
		Counts:   m.Counts(),
		Statuses: []RowStatus{RowPass, RowFail, RowNotApplicable, RowCustomer, RowNotCovered},
		Checks:   map[string]int{},
	}
	for _, f := range r.Findings {
		d.Checks[string(f.Status)]++
	}
	if err := reportTmpl.Execute(w, d); err != nil {
		return fmt.Errorf("evidence: write HTML report: %w", err)
	}
	return nil
}
