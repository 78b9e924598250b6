// Package evidence turns verify results into the documents an auditor reads:
// an OSCAL assessment-results document, JUnit XML, a JSON record, an XLSX
// compliance matrix shaped like the seeds' spreadsheets and a static HTML
// report. Every writer reads the same provision.Results; the matrix (this
// file) is the one place that decides a framework row's status, so the
// spreadsheet, the HTML and the OSCAL document cannot disagree.
package evidence

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// RowStatus is a framework row's verdict in the compliance matrix.
type RowStatus string

const (
	RowPass          RowStatus = "pass"
	RowFail          RowStatus = "fail"
	RowNotApplicable RowStatus = "not-applicable"
	// RowCustomer is never a pass: the product cannot satisfy a row the
	// seed text puts on the customer, whatever the covering checks say.
	RowCustomer RowStatus = "customer-responsibility"
	// RowNotCovered marks a product or shared row no control checks: a gap.
	RowNotCovered RowStatus = "not-covered"
)

// sharedNote is carried by every shared row so a "pass" is never read as
// "the customer has nothing to do".
const sharedNote = "shared responsibility: the product's part is checked here; the customer's part remains theirs"

// Row is one framework row in the matrix.
type Row struct {
	Key            string // "SOC2:CC6"
	Ref            string
	Title          string
	Group          string
	Capability     string
	Responsibility frameworks.Responsibility
	Controls       []string // covering control IDs, sorted
	Status         RowStatus
	Evidence       string // one line per covering finding
	Note           string // why the status is what it is, when it is not obvious
}

// Framework is one catalogue's rows, in catalogue order.
type Framework struct {
	ID     string
	Name   string
	Source string
	Rows   []Row
}

// ControlSummary is one control's overall verdict across its findings.
type ControlSummary struct {
	ID       string
	Title    string
	Rows     []string
	Status   provision.Status
	Findings []provision.Finding // sorted by property
}

// Matrix is the compliance matrix: every catalogue row with its status, and
// every control seen in the results.
type Matrix struct {
	Frameworks []Framework
	Controls   []ControlSummary // sorted by ID
}

// Counts tallies rows by status across all frameworks.
type Counts map[RowStatus]int

// Counts tallies the matrix rows by status.
func (m Matrix) Counts() Counts {
	c := Counts{}
	for _, fw := range m.Frameworks {
		for _, r := range fw.Rows {
			c[r.Status]++
		}
	}
	return c
}

// String is the one-line summary `bulwark evidence` prints.
func (c Counts) String() string {
	return fmt.Sprintf("%d rows pass / %d fail / %d n-a / %d customer / %d not-covered",
		c[RowPass], c[RowFail], c[RowNotApplicable], c[RowCustomer], c[RowNotCovered])
}

// Build computes the matrix. A finding that names a row no catalogue has is
// an error (a typo in a control's mapping would otherwise vanish from the
// evidence); the matrix is still returned complete for the known rows.
func Build(r provision.Results, cats []*frameworks.Catalogue) (Matrix, error) {
	findings := sortedFindings(r.Findings)
	byRow, err := findingsByRow(findings, cats)
	m := Matrix{Controls: summarize(findings)}
	for _, cat := range cats {
		fw := Framework{ID: cat.ID, Name: cat.Name, Source: cat.Source}
		for _, row := range cat.Rows {
			fw.Rows = append(fw.Rows, buildRow(cat, row, byRow[cat.Key(row)]))
		}
		m.Frameworks = append(m.Frameworks, fw)
	}
	return m, err
}

// findingsByRow groups findings by the row keys they name and reports every
// unknown key once, naming the controls that used it.
func findingsByRow(findings []provision.Finding, cats []*frameworks.Catalogue) (map[string][]provision.Finding, error) {
	known := map[string]bool{}
	for _, cat := range cats {
		for _, row := range cat.Rows {
			known[cat.Key(row)] = true
		}
	}
	byRow := map[string][]provision.Finding{}
	unknown := map[string]map[string]bool{}
	for _, f := range findings {
		for _, key := range f.Rows {
			if !known[key] {
				if unknown[key] == nil {
					unknown[key] = map[string]bool{}
				}
				unknown[key][f.ControlID] = true
				continue
			}
			byRow[key] = append(byRow[key], f)
		}
	}
	return byRow, unknownRowsError(unknown, cats)
}

func unknownRowsError(unknown map[string]map[string]bool, cats []*frameworks.Catalogue) error {
	if len(unknown) == 0 {
		return nil
	}
	var ids []string
	for _, cat := range cats {
		ids = append(ids, cat.ID)
	}
	var errs []error
	for _, key := range sortedKeys(unknown) {
		errs = append(errs, fmt.Errorf("evidence: control %s names framework row %q, which no catalogue (%s) has: fix the control's Rows or the catalogue",
			strings.Join(sortedKeys(unknown[key]), ", "), key, strings.Join(ids, ", ")))
	}
	return errors.Join(errs...)
}

// buildRow applies the status rules to one row.
func buildRow(cat *frameworks.Catalogue, row frameworks.Row, fs []provision.Finding) Row {
	out := Row{
		Key: cat.Key(row), Ref: row.Ref, Title: row.Title, Group: row.Group,
		Capability: row.Capability, Responsibility: row.Responsibility,
		Controls: controlIDs(fs), Evidence: evidenceText(fs),
	}
	out.Status, out.Note = rowStatus(row.Responsibility, fs)
	if row.Responsibility == frameworks.Shared {
		out.Note = joinNotes(out.Note, sharedNote)
	}
	return out
}

// rowStatus is the status rule table; see the RowStatus constants.
func rowStatus(resp frameworks.Responsibility, fs []provision.Finding) (RowStatus, string) {
	if resp == frameworks.Customer {
		return RowCustomer, "customer responsibility: bulwark checks support it but cannot satisfy it"
	}
	if len(fs) == 0 {
		return RowNotCovered, fmt.Sprintf("gap: no bulwark control covers this %s row", resp)
	}
	var warns, reasons []string
	pass := 0
	for _, f := range fs {
		switch f.Status {
		case provision.Fail:
			return RowFail, ""
		case provision.Warn:
			warns = append(warns, f.ControlID+": "+f.Property)
			pass++
		case provision.Pass:
			pass++
		case provision.NotApplicable:
			reasons = append(reasons, f.ControlID+": "+f.Reason)
		default:
			// An unknown status is a malformed check: not satisfied, never skipped.
			return RowFail, fmt.Sprintf("%s reported unknown status %q", f.ControlID, f.Status)
		}
	}
	if pass == 0 {
		return RowNotApplicable, "not applicable: " + strings.Join(uniq(reasons), "; ")
	}
	if len(warns) > 0 {
		return RowPass, "pass with warnings: " + strings.Join(uniq(warns), "; ")
	}
	return RowPass, ""
}

// ControlStatus folds a control's findings into one verdict: any fail
// fails; only not-applicable is not-applicable; otherwise any warn warns.
func ControlStatus(fs []provision.Finding) provision.Status {
	st := provision.NotApplicable
	for _, f := range fs {
		switch f.Status {
		case provision.Fail:
			return provision.Fail
		case provision.Warn:
			st = provision.Warn
		case provision.Pass:
			if st != provision.Warn {
				st = provision.Pass
			}
		case provision.NotApplicable:
		default:
			return provision.Fail
		}
	}
	if len(fs) == 0 {
		return provision.Fail // a control that produced nothing proved nothing
	}
	return st
}

func summarize(findings []provision.Finding) []ControlSummary {
	var out []ControlSummary
	for _, f := range findings {
		if n := len(out); n == 0 || out[n-1].ID != f.ControlID {
			out = append(out, ControlSummary{ID: f.ControlID, Title: f.Title})
		}
		c := &out[len(out)-1]
		c.Findings = append(c.Findings, f)
		c.Rows = uniq(append(c.Rows, f.Rows...))
	}
	for i := range out {
		out[i].Status = ControlStatus(out[i].Findings)
	}
	return out
}

// sortedFindings copies and sorts by (control ID, property) so every
// writer's output is stable whatever order the verifiers ran in.
func sortedFindings(in []provision.Finding) []provision.Finding {
	out := append([]provision.Finding(nil), in...)
	slices.SortStableFunc(out, func(a, b provision.Finding) int {
		return cmp.Or(cmp.Compare(a.ControlID, b.ControlID), cmp.Compare(a.Property, b.Property))
	})
	return out
}

// FindingName is the human title used by JUnit, OSCAL and HTML:
// "ssh.daemon: PasswordAuthentication is no".
func FindingName(f provision.Finding) string {
	if f.Expected == "" {
		return f.ControlID + ": " + f.Property
	}
	return f.ControlID + ": " + f.Property + " is " + f.Expected
}

// FindingEvidence is one finding as a line of evidence text.
func FindingEvidence(f provision.Finding) string {
	s := fmt.Sprintf("[%s] %s (actual: %s)", f.Status, FindingName(f), f.Actual)
	if f.Reason != "" {
		s += "; reason: " + f.Reason
	}
	for _, e := range f.Evidence {
		s += "; read " + e.Source + ": " + e.Read
	}
	return s
}

func evidenceText(fs []provision.Finding) string {
	lines := make([]string, 0, len(fs))
	for _, f := range fs {
		lines = append(lines, FindingEvidence(f))
	}
	return strings.Join(lines, "\n")
}

func controlIDs(fs []provision.Finding) []string {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, f.ControlID)
	}
	return uniq(ids)
}

// uniq sorts and removes duplicates.
func uniq(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	s := append([]string(nil), in...)
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
