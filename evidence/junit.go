package evidence

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/provision"
)

// The JUnit schema CI systems accept (Jenkins, GitLab, GitHub reporters):
// one testsuite per control, one testcase per finding.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is CDATA so multi-line evidence stays readable in the raw file.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// WriteJUnit writes the results as JUnit XML. Test names are human titles
// ("ssh.daemon: PasswordAuthentication is no"); a failure carries expected,
// actual and the evidence; not-applicable findings are skipped with their
// reason.
func WriteJUnit(w io.Writer, r provision.Results) error {
	doc := junitSuites{Name: "bulwark verify " + r.Target}
	var total time.Duration
	for _, c := range summarize(sortedFindings(r.Findings)) {
		s := junitControl(c)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
		for _, f := range c.Findings {
			total += f.Duration
		}
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("evidence: write JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("evidence: write JUnit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("evidence: write JUnit: %w", err)
	}
	return nil
}

func junitControl(c ControlSummary) junitSuite {
	s := junitSuite{Name: c.ID, Tests: len(c.Findings)}
	s.Properties = []junitProperty{{Name: "title", Value: c.Title}, {Name: "rows", Value: strings.Join(c.Rows, ", ")}}
	var d time.Duration
	for _, f := range c.Findings {
		tc := junitCase{Name: FindingName(f), Classname: c.ID, Time: seconds(f.Duration)}
		switch f.Status {
		case provision.Pass, provision.Warn:
			tc.SystemOut = &junitText{findingDetail(f)}
		case provision.NotApplicable:
			tc.Skipped = &junitMessage{Message: "not applicable: " + f.Reason}
			s.Skipped++
		default: // fail, or a status nobody knows: never a silent pass
			tc.Failure = &junitMessage{
				Message: fmt.Sprintf("expected %s, got %s", f.Expected, f.Actual),
				Type:    string(f.Status),
				Body:    findingDetail(f),
			}
			s.Failures++
		}
		d += f.Duration
		s.Cases = append(s.Cases, tc)
	}
	s.Time = seconds(d)
	return s
}

// findingDetail is the multi-line body: what was expected, what was read
// and where from.
func findingDetail(f provision.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\nexpected: %s\nactual: %s\n", f.Status, f.Expected, f.Actual)
	if f.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", f.Reason)
	}
	for _, e := range f.Evidence {
		fmt.Fprintf(&b, "evidence: %s: %s\n", e.Source, e.Read)
	}
	return b.String()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
