package evidence

import (
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

func TestRowStatusRules(t *testing.T) {
	pass := provision.Finding{ControlID: "a.pass", Property: "p", Status: provision.Pass}
	fail := provision.Finding{ControlID: "b.fail", Property: "p", Status: provision.Fail}
	warn := provision.Finding{ControlID: "c.warn", Property: "stale", Status: provision.Warn}
	na := provision.Finding{ControlID: "d.na", Property: "p", Status: provision.NotApplicable, Reason: "no kernel"}
	bogus := provision.Finding{ControlID: "e.bogus", Property: "p", Status: "maybe"}
	tests := []struct {
		name     string
		resp     frameworks.Responsibility
		findings []provision.Finding
		want     RowStatus
		note     string // substring the note must carry
	}{
		{"customer row with passing findings stays customer", frameworks.Customer, []provision.Finding{pass, pass}, RowCustomer, "customer responsibility"},
		{"customer row with a failure stays customer", frameworks.Customer, []provision.Finding{fail}, RowCustomer, "customer responsibility"},
		{"customer row with no control", frameworks.Customer, nil, RowCustomer, "customer responsibility"},
		{"product row all pass", frameworks.Product, []provision.Finding{pass}, RowPass, ""},
		{"one failure fails the row", frameworks.Product, []provision.Finding{pass, fail, pass}, RowFail, ""},
		{"warn counts as pass with a note", frameworks.Product, []provision.Finding{pass, warn}, RowPass, "pass with warnings: c.warn: stale"},
		{"only not-applicable", frameworks.Product, []provision.Finding{na}, RowNotApplicable, "no kernel"},
		{"not-applicable beside a pass is a pass", frameworks.Product, []provision.Finding{na, pass}, RowPass, ""},
		{"product row with no control is a gap", frameworks.Product, nil, RowNotCovered, "gap"},
		{"shared row with no control is a gap", frameworks.Shared, nil, RowNotCovered, "customer's part remains theirs"},
		{"shared row pass keeps the customer note", frameworks.Shared, []provision.Finding{pass}, RowPass, "customer's part remains theirs"},
		{"unknown status is a failure, never skipped", frameworks.Product, []provision.Finding{pass, bogus}, RowFail, `unknown status "maybe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := &frameworks.Catalogue{ID: "T", Rows: []frameworks.Row{{Ref: "R1", Responsibility: tc.resp}}}
			r := provision.Results{}
			for _, f := range tc.findings {
				f.Rows = []string{"T:R1"}
				r.Findings = append(r.Findings, f)
			}
			m, err := Build(r, []*frameworks.Catalogue{cat})
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			row := m.Frameworks[0].Rows[0]
			if row.Status != tc.want {
				t.Errorf("status = %q, want %q (note %q)", row.Status, tc.want, row.Note)
			}
			if !strings.Contains(row.Note, tc.note) {
				t.Errorf("note = %q, want it to contain %q", row.Note, tc.note)
			}
		})
	}
}

func TestBuildUnknownRowIsAnError(t *testing.T) {
	r := testResults()
	r.Findings = append(r.Findings,
		provision.Finding{ControlID: "fw.default-deny", Rows: []string{"SOC2:CC66"}, Property: "policy", Status: provision.Pass},
		provision.Finding{ControlID: "tls.nginx", Rows: []string{"ISO:A.5", "SOC2:CC66"}, Property: "protocols", Status: provision.Pass},
	)
	m, err := Build(r, testCatalogues())
	if err == nil {
		t.Fatal("Build accepted findings naming unknown rows")
	}
	for _, want := range []string{`"SOC2:CC66"`, "fw.default-deny, tls.nginx", `"ISO:A.5"`, "SOC2, SOX"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// The known rows are still all there, so a caller can show what it can.
	if got := len(m.Frameworks[0].Rows) + len(m.Frameworks[1].Rows); got != 8 {
		t.Errorf("matrix has %d rows, want 8", got)
	}
}

func TestBuildFixture(t *testing.T) {
	m := mustBuild(t)
	want := map[string]RowStatus{
		"SOC2:CC1":                     RowCustomer, // governance.banner passes, still the customer's
		"SOC2:CC2":                     RowFail,
		"SOC2:CC6":                     RowPass, // with a warning
		"SOC2:CC7":                     RowNotCovered,
		"SOC2:PI1.1–PI1.5":             RowNotApplicable,
		"SOX:Network Security":         RowPass,
		"SOX:Logging and Audit Trails": RowFail,
		"SOX:Encryption":               RowNotApplicable,
	}
	for _, fw := range m.Frameworks {
		for _, row := range fw.Rows {
			if row.Status != want[row.Key] {
				t.Errorf("%s: status %q, want %q", row.Key, row.Status, want[row.Key])
			}
		}
	}
	if got := m.Counts().String(); got != "2 rows pass / 2 fail / 2 n-a / 1 customer / 1 not-covered" {
		t.Errorf("summary = %q", got)
	}
	cc6 := m.Frameworks[0].Rows[2]
	if strings.Join(cc6.Controls, ",") != "ssh.daemon,updates.unattended" {
		t.Errorf("CC6 controls = %v", cc6.Controls)
	}
	if !strings.Contains(cc6.Evidence, "read /etc/ssh/sshd_config.d/50-bulwark.conf: PasswordAuthentication no") {
		t.Errorf("CC6 evidence lacks what was read:\n%s", cc6.Evidence)
	}
	wantControls := map[string]provision.Status{"audit.journald": provision.Fail, "fips.mode": provision.NotApplicable,
		"governance.banner": provision.Pass, "ssh.daemon": provision.Pass, "updates.unattended": provision.Warn}
	for _, c := range m.Controls {
		if c.Status != wantControls[c.ID] {
			t.Errorf("control %s: %q, want %q", c.ID, c.Status, wantControls[c.ID])
		}
	}
}
