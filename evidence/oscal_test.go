package evidence

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/defenseunicorns/go-oscal/src/pkg/validation"
	oscal "github.com/defenseunicorns/go-oscal/src/types/oscal-1-1-2"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bulwark-appliance/bulwark/provision"
)

// schemaFile is NIST's OSCAL 1.1.2 complete JSON schema, vendored verbatim
// from the copy go-oscal v0.7.1 embeds (src/internal/schemas): the
// per-model oscal_assessment-results_schema.json release artifact is not
// reachable from here, and the complete schema holds the same
// assessment-results definitions. Its top-level oneOf admits exactly one
// model per document, so a document whose only key is "assessment-results"
// and that validates has been validated as assessment results.
const schemaFile = "testdata/oscal_complete_schema-1.1.2.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("parse %s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaFile, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return s
}

func oscalJSON(t *testing.T, r provision.Results) []byte {
	t.Helper()
	m, err := Build(r, testCatalogues())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOSCAL(&buf, r, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOSCALValidatesAgainstSchema(t *testing.T) {
	schema := compileSchema(t)
	empty := testResults()
	empty.Findings, empty.Version, empty.Target = nil, "", ""
	cases := map[string]provision.Results{"fixture": testResults(), "no findings, no version": empty}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			out := oscalJSON(t, r)
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc) != 1 || doc["assessment-results"] == nil {
				t.Fatalf("top-level keys = %v, want only assessment-results", keys(doc))
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Fatalf("OSCAL document does not validate against %s:\n%v", schemaFile, err)
			}
			// go-oscal's own validator, as a second opinion.
			v, err := validation.NewValidator(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(); err != nil {
				res, _ := v.GetValidationResult()
				t.Fatalf("go-oscal validation: %v %+v", err, res.Errors)
			}
		})
	}
}

// The schema check must be able to fail: break the document on purpose.
func TestOSCALSchemaRejectsBrokenDocuments(t *testing.T) {
	schema := compileSchema(t)
	breaks := map[string]func(ar map[string]any){
		"missing metadata": func(ar map[string]any) { delete(ar, "metadata") },
		"bad uuid":         func(ar map[string]any) { ar["uuid"] = "not-a-uuid" },
		"row key as control-id": func(ar map[string]any) {
			rc := ar["results"].([]any)[0].(map[string]any)["reviewed-controls"].(map[string]any)
			sel := rc["control-selections"].([]any)[0].(map[string]any)
			sel["include-controls"].([]any)[0].(map[string]any)["control-id"] = "SOX:Network Security"
		},
		"unknown finding state": func(ar map[string]any) {
			f := ar["results"].([]any)[0].(map[string]any)["findings"].([]any)[0].(map[string]any)
			f["target"].(map[string]any)["status"].(map[string]any)["state"] = "skipped"
		},
	}
	for name, brk := range breaks {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(oscalJSON(t, testResults()), &doc); err != nil {
				t.Fatal(err)
			}
			brk(doc["assessment-results"].(map[string]any))
			b, _ := json.Marshal(doc)
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err := schema.Validate(inst); err == nil {
				t.Fatal("schema accepted a broken document")
			}
		})
	}
}

// Lula's rule: a control is satisfied only when all its observations pass.
func TestOSCALFindingPerControl(t *testing.T) {
	r := testResults()
	// Break one of ssh.daemon's two checks: the control must turn.
	r.Findings[2].Status, r.Findings[2].Actual = provision.Fail, "yes"
	var doc oscal.OscalCompleteSchema
	if err := json.Unmarshal(oscalJSON(t, r), &doc); err != nil {
		t.Fatal(err)
	}
	res := doc.AssessmentResults.Results[0]
	if n := len(*res.Observations); n != len(r.Findings) {
		t.Errorf("%d observations, want one per finding (%d)", n, len(r.Findings))
	}
	want := map[string]struct{ state, reason, remark string }{
		"audit.journald":     {"not-satisfied", "fail", "Storage is persistent (actual volatile)"},
		"fips.mode":          {"not-satisfied", "other", "Not applicable on this target: fips.mode: fips_enabled is 1 (offline rootfs"},
		"governance.banner":  {"satisfied", "pass", ""},
		"ssh.daemon":         {"not-satisfied", "fail", "ssh.daemon: PasswordAuthentication is no (actual yes)"},
		"updates.unattended": {"satisfied", "pass", "warnings"},
	}
	obsByUUID := map[string]oscal.Observation{}
	for _, o := range *res.Observations {
		obsByUUID[o.UUID] = o
	}
	for _, f := range *res.Findings {
		id := f.Target.TargetId
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected finding for %q", id)
			continue
		}
		st := f.Target.Status
		if f.Target.Type != "objective-id" || st.State != w.state || st.Reason != w.reason || !strings.Contains(st.Remarks, w.remark) {
			t.Errorf("%s: type %q state %q reason %q remarks %q; want objective-id %q %q containing %q",
				id, f.Target.Type, st.State, st.Reason, st.Remarks, w.state, w.reason, w.remark)
		}
		for _, rel := range *f.RelatedObservations {
			o, ok := obsByUUID[rel.ObservationUuid]
			if !ok || !strings.HasPrefix(o.Title, id+":") {
				t.Errorf("%s: related observation %s is not one of its checks", id, rel.ObservationUuid)
			}
		}
		delete(want, id)
	}
	if len(want) > 0 {
		t.Errorf("controls without a finding: %v", want)
	}
}

func TestOSCALObservationsCarryEvidence(t *testing.T) {
	var doc oscal.OscalCompleteSchema
	if err := json.Unmarshal(oscalJSON(t, testResults()), &doc); err != nil {
		t.Fatal(err)
	}
	res := doc.AssessmentResults.Results[0]
	subject := (*res.LocalDefinitions.InventoryItems)[0].UUID
	for _, o := range *res.Observations {
		if len(o.Methods) != 1 || o.Methods[0] != "TEST" {
			t.Errorf("%s: methods %v", o.Title, o.Methods)
		}
		if s := *o.Subjects; len(s) != 1 || s[0].SubjectUuid != subject {
			t.Errorf("%s: subjects %+v, want the target %s", o.Title, s, subject)
		}
		if o.Title == "ssh.daemon: PermitRootLogin is no" {
			ev := (*o.RelevantEvidence)[0].Description
			if ev != "read /etc/ssh/sshd_config.d/50-bulwark.conf: PermitRootLogin no" {
				t.Errorf("relevant evidence = %q", ev)
			}
		}
	}
	var rows []string
	for _, sel := range res.ReviewedControls.ControlSelections {
		for _, c := range *sel.IncludeControls {
			rows = append(rows, c.ControlId)
		}
	}
	if got := strings.Join(rows, " "); got != "soc2-cc1 soc2-cc2 soc2-cc6 soc2-pi1.1-pi1.5 sox-network-security sox-logging-and-audit-trails sox-encryption" {
		t.Errorf("reviewed controls = %s", got)
	}
}

// Two runs, findings in a different order: byte-identical documents.
func TestOSCALDeterministic(t *testing.T) {
	a := oscalJSON(t, testResults())
	r := testResults()
	for i, j := 0, len(r.Findings)-1; i < j; i, j = i+1, j-1 {
		r.Findings[i], r.Findings[j] = r.Findings[j], r.Findings[i]
	}
	if b := oscalJSON(t, r); !bytes.Equal(a, b) {
		t.Error("OSCAL output depends on finding order")
	}
	golden(t, "assessment-results.golden.json", a)
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"SOC2:CC6": "soc2-cc6", "SOX:Network Security": "sox-network-security",
		"SOC2:PI1.1–PI1.5": "soc2-pi1.1-pi1.5", "ssh.daemon": "ssh.daemon", "1x": "x-1x",
	} {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %q, want %q", in, got, want)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
