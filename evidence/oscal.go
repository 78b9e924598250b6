package evidence

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	oscaluuid "github.com/defenseunicorns/go-oscal/src/pkg/uuid"
	oscal "github.com/defenseunicorns/go-oscal/src/types/oscal-1-1-2"

	"github.com/bulwark-appliance/bulwark/provision"
)

// OSCALVersion is the model version the document claims and the vendored
// schema validates.
const OSCALVersion = "1.1.2"

// bulwarkNS namespaces our own props: OSCAL reserves un-namespaced prop
// names for its own vocabulary.
const bulwarkNS = "https://github.com/bulwark-appliance/bulwark/ns/oscal"

// WriteOSCAL writes an OSCAL assessment-results document: an observation per
// finding and a finding per control, following Lula's rule — a control is
// satisfied only when every observation passed; a failed, missing or
// malformed check is not-satisfied, never skipped. UUIDs are v5 (derived
// from identities, not random) and everything is sorted, so two runs over
// the same results are byte-identical.
func WriteOSCAL(w io.Writer, r provision.Results, m Matrix) error {
	doc := oscal.OscalCompleteSchema{AssessmentResults: assessmentResults(r, m)}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("evidence: write OSCAL assessment-results: %w", err)
	}
	return nil
}

func assessmentResults(r provision.Results, m Matrix) *oscal.AssessmentResults {
	identity := r.Target + "\x00" + r.PolicyHash + "\x00" + r.Finished.UTC().Format(time.RFC3339Nano)
	policy := oscal.Resource{
		UUID:        stableUUID("policy", r.PolicyHash),
		Title:       "bulwark policy",
		Description: "The bulwark policy that defined the assessed controls (sha256 " + orNone(r.PolicyHash) + ").",
	}
	return &oscal.AssessmentResults{
		UUID:     stableUUID("assessment-results", identity),
		Metadata: metadata(r),
		// bulwark has no separate OSCAL assessment plan: the plan is the
		// policy itself. import-ap is required, so it points at the back-matter
		// resource that names the policy by its hash.
		ImportAp:   oscal.ImportAp{Href: "#" + policy.UUID, Remarks: "The assessment plan is the bulwark policy identified in back-matter."},
		Results:    []oscal.Result{result(r, m, identity)},
		BackMatter: &oscal.BackMatter{Resources: &[]oscal.Resource{policy}},
	}
}

func metadata(r provision.Results) oscal.Metadata {
	version := r.Version
	if strings.TrimSpace(version) == "" {
		version = "unversioned" // OSCAL requires a non-empty version string
	}
	return oscal.Metadata{
		Title:        "bulwark assessment results for " + orNone(r.Target),
		Version:      version,
		OscalVersion: OSCALVersion,
		LastModified: r.Finished.UTC(),
	}
}

func result(r provision.Results, m Matrix, identity string) oscal.Result {
	subject := oscal.InventoryItem{
		UUID:        stableUUID("target", r.Target),
		Description: "The appliance assessed by bulwark at " + orNone(r.Target) + ".",
	}
	var obs []oscal.Observation
	var finds []oscal.Finding
	for _, c := range m.Controls {
		var related []oscal.RelatedObservation
		for i, f := range c.Findings {
			o := observation(r, f, i, subject.UUID)
			obs = append(obs, o)
			related = append(related, oscal.RelatedObservation{ObservationUuid: o.UUID})
		}
		finds = append(finds, controlFinding(c, related))
	}
	res := oscal.Result{
		UUID:             stableUUID("result", identity),
		Title:            "bulwark verify",
		Description:      fmt.Sprintf("Automated verification of %d bulwark controls against %s.", len(m.Controls), orNone(r.Target)),
		Start:            r.Started.UTC(),
		ReviewedControls: reviewedControls(m),
		LocalDefinitions: &oscal.LocalDefinitions{InventoryItems: &[]oscal.InventoryItem{subject}},
	}
	if !r.Finished.IsZero() {
		end := r.Finished.UTC()
		res.End = &end
	}
	if len(obs) > 0 {
		res.Observations = &obs
		res.Findings = &finds
	}
	return res
}

// observation is one check: what was expected, what was read, from where.
func observation(r provision.Results, f provision.Finding, i int, subjectUUID string) oscal.Observation {
	o := oscal.Observation{
		// The index keeps two findings of one control on one property apart;
		// the input is sorted, so the index is stable too.
		UUID:        stableUUID("observation", fmt.Sprintf("%s\x00%s\x00%d", f.ControlID, f.Property, i)),
		Title:       FindingName(f),
		Description: fmt.Sprintf("%s: expected %q, actual %q: %s.", f.Property, f.Expected, f.Actual, f.Status),
		Methods:     []string{"TEST"},
		Collected:   r.Finished.UTC(),
		Props: &[]oscal.Property{
			{Name: "status", Ns: bulwarkNS, Value: string(f.Status)},
			{Name: "control-id", Ns: bulwarkNS, Value: f.ControlID},
		},
		Subjects: &[]oscal.SubjectReference{{SubjectUuid: subjectUUID, Type: "inventory-item", Title: orNone(r.Target)}},
		Remarks:  f.Reason,
	}
	if len(f.Evidence) > 0 {
		ev := make([]oscal.RelevantEvidence, 0, len(f.Evidence))
		for _, e := range f.Evidence {
			ev = append(ev, oscal.RelevantEvidence{Description: "read " + e.Source + ": " + orNone(e.Read)})
		}
		o.RelevantEvidence = &ev
	}
	return o
}

// controlFinding is the verdict for one control (Lula's rule).
func controlFinding(c ControlSummary, related []oscal.RelatedObservation) oscal.Finding {
	status := oscal.ObjectiveStatus{State: "satisfied", Reason: "pass"}
	switch c.Status {
	case provision.Pass:
	case provision.Warn:
		status.Remarks = "All checks passed; some with warnings: " + failedChecks(c, provision.Warn)
	case provision.NotApplicable:
		// OSCAL has no "not applicable" state; not-applicable is never a pass,
		// so it is not-satisfied with the reasons spelled out.
		status = oscal.ObjectiveStatus{State: "not-satisfied", Reason: "other",
			Remarks: "Not applicable on this target: " + failedChecks(c, provision.NotApplicable)}
	default:
		status = oscal.ObjectiveStatus{State: "not-satisfied", Reason: "fail",
			Remarks: "Failed checks: " + failedChecks(c, provision.Fail)}
	}
	props := []oscal.Property{{Name: "status", Ns: bulwarkNS, Value: string(c.Status)}}
	for _, row := range c.Rows {
		props = append(props, oscal.Property{Name: "framework-row", Ns: bulwarkNS, Value: row})
	}
	return oscal.Finding{
		UUID:                stableUUID("finding", c.ID),
		Title:               c.ID + ": " + orNone(c.Title),
		Description:         fmt.Sprintf("Control %s serves %s; checks run: %d.", c.ID, orNone(strings.Join(c.Rows, ", ")), len(c.Findings)),
		Target:              oscal.FindingTarget{Type: "objective-id", TargetId: token(c.ID), Status: status},
		RelatedObservations: &related,
		Props:               &props,
	}
}

// failedChecks says why, not just which: each check with what was read.
func failedChecks(c ControlSummary, want provision.Status) string {
	var parts []string
	for _, f := range c.Findings {
		if f.Status == want || (want == provision.Fail && !knownStatus(f.Status)) {
			s := FindingName(f) + " (actual " + f.Actual + ")"
			if f.Reason != "" {
				s = FindingName(f) + " (" + f.Reason + ")"
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// reviewedControls names the framework rows the controls were mapped to,
// one selection per framework; rows are OSCAL tokens ("soc2-cc6").
func reviewedControls(m Matrix) oscal.ReviewedControls {
	var sel []oscal.AssessedControls
	for _, fw := range m.Frameworks {
		var ids []oscal.AssessedControlsSelectControlById
		for _, row := range fw.Rows {
			if len(row.Controls) > 0 {
				ids = append(ids, oscal.AssessedControlsSelectControlById{ControlId: token(row.Key)})
			}
		}
		if len(ids) > 0 {
			sel = append(sel, oscal.AssessedControls{Description: fw.Name + " rows covered by bulwark controls", IncludeControls: &ids})
		}
	}
	if len(sel) == 0 {
		// control-selections needs one entry; with no mapped rows, say so.
		sel = []oscal.AssessedControls{{Description: "No framework rows were mapped by the assessed controls.", IncludeAll: &oscal.IncludeAll{}}}
	}
	return oscal.ReviewedControls{Description: "Framework rows served by the bulwark controls.", ControlSelections: sel}
}

// nonToken matches what an OSCAL token may not contain.
var nonToken = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// token turns a row key like "SOX:Network Security" or "SOC2:PI1.1–PI1.5"
// into an OSCAL token ("sox-network-security", "soc2-pi1.1-pi1.5").
func token(s string) string {
	t := strings.Trim(nonToken.ReplaceAllString(strings.ToLower(s), "-"), "-._")
	if t == "" || !(t[0] >= 'a' && t[0] <= 'z') {
		t = "x-" + t
	}
	return t
}

// stableUUID is a v5 UUID of kind and identity, so reruns reuse it.
func stableUUID(kind, identity string) string {
	return oscaluuid.NewUUIDWithSource("bulwark:" + kind + ":" + identity)
}

func knownStatus(s provision.Status) bool {
	switch s {
	case provision.Pass, provision.Fail, provision.Warn, provision.NotApplicable:
		return true
	}
	return false
}

// orNone keeps required OSCAL strings non-empty and says what was missing.
func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(none)"
	}
	return s
}
