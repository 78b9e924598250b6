package provision

import "fmt"

// Meta is what a control says of itself, and what every finding of it
// repeats: the stable dotted ID (family.requirement, e.g. "ssh.daemon"),
// a title, and the framework rows it serves (e.g. "SOC2:CC6", "SOX:Network
// Security"; see policies/frameworks). A family declares one Meta value per
// control and returns it from the control's Meta method, so the runner, the
// evidence writers and the control's own findings read one description.
type Meta struct {
	ID, Title string
	Rows      []string
}

// Finding starts a finding for one property of the control.
func (m Meta) Finding(property, expected string) Finding {
	return Finding{ControlID: m.ID, Title: m.Title, Rows: m.Rows, Property: property, Expected: expected}
}

// Wrap prefixes an Apply error with the control and the step that failed.
func (m Meta) Wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s: %w", m.ID, step, err)
}
