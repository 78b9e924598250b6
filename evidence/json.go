package evidence

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/bulwark-appliance/bulwark/provision"
)

// WriteJSON writes the results indented, findings sorted by (control ID,
// property), so two runs over the same host diff cleanly.
func WriteJSON(w io.Writer, r provision.Results) error {
	r.Findings = sortedFindings(r.Findings)
	if r.Findings == nil {
		r.Findings = []provision.Finding{} // "[]", not "null": readers iterate it
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("evidence: write results JSON: %w", err)
	}
	return nil
}
