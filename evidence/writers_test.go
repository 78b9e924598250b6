package evidence

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/provision"
)

func TestJUnitGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, testResults()); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.golden.xml", buf.Bytes())
}

// Read the XML back the way a CI reporter would and check what it shows.
func TestJUnitReadBack(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, testResults()); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, buf.Bytes())
	}
	if doc.Tests != 6 || doc.Failures != 1 || doc.Skipped != 1 || len(doc.Suites) != 5 {
		t.Errorf("tests=%d failures=%d skipped=%d suites=%d, want 6/1/1/5", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
	}
	cases := map[string]junitCase{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Classname != s.Name {
				t.Errorf("case %q in suite %q has classname %q", c.Name, s.Name, c.Classname)
			}
			cases[c.Name] = c
		}
	}
	if _, ok := cases["ssh.daemon: PasswordAuthentication is no"]; !ok {
		t.Errorf("no human-titled case; have %v", sortedKeys(cases))
	}
	f := cases["audit.journald: Storage is persistent"].Failure
	if f == nil || f.Message != "expected persistent, got volatile" || !strings.Contains(f.Body, "evidence: /etc/systemd/journald.conf: Storage=volatile") {
		t.Errorf("failure = %+v, want expected/actual and the evidence", f)
	}
	s := cases["fips.mode: fips_enabled is 1"].Skipped
	if s == nil || !strings.Contains(s.Message, "offline rootfs") {
		t.Errorf("not-applicable case skipped = %+v, want the reason", s)
	}
}

// A status no writer knows must show as a failure, never as a pass.
func TestJUnitUnknownStatusFails(t *testing.T) {
	r := provision.Results{Findings: []provision.Finding{{ControlID: "x.y", Property: "p", Status: "bogus"}}}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<failure message="expected , got " type="bogus">`) {
		t.Errorf("unknown status not reported as failure:\n%s", buf.String())
	}
}

func TestJSONGoldenAndRoundTrip(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteJSON(&a, testResults()); err != nil {
		t.Fatal(err)
	}
	golden(t, "results.golden.json", a.Bytes())

	var back provision.Results
	dec := json.NewDecoder(bytes.NewReader(a.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if len(back.Findings) != 6 || back.Findings[0].ControlID != "audit.journald" || back.Findings[5].ControlID != "updates.unattended" {
		t.Errorf("findings not sorted by control: %+v", back.Findings)
	}
	if err := WriteJSON(&b, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("JSON does not round-trip byte for byte")
	}
}

func TestHTMLGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, testResults(), mustBuild(t)); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		`<td class="s customer-responsibility">customer-responsibility</td>`,
		`<td class="s not-covered">not-covered</td>`,
		"Logs &lt;kept&gt; &amp; forwarded.", // escaped, not injected
		"<code>/etc/systemd/journald.conf</code>: Storage=volatile",
		`<h3 id="c-ssh.daemon">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://", "<link"} {
		if strings.Contains(html, banned) {
			t.Errorf("report is not self-contained: has %q", banned)
		}
	}
	golden(t, "report.golden.html", buf.Bytes())
}
