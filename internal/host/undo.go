package host

import (
	"context"
	"strings"
)

// inferUndo works out how to reverse the few state-changing commands
// controls run whose effect the host can read beforehand: unit enablement
// (systemctl enable/disable/mask/unmask of one unit) and a created group.
// It asks the target's current state first, so the undo restores exactly
// that state; a command that would change nothing gets an empty undo.
// Anything else returns nil: journalled as done, not reversible.
func (l *Local) inferUndo(ctx context.Context, name string, args []string) (undo []string, known bool) {
	switch {
	case name == "systemctl" && len(args) == 2:
		return l.unitUndo(ctx, args[0], args[1])
	case name == "groupadd" && len(args) > 0:
		g := args[len(args)-1]
		if _, err := l.Query(ctx, "getent", "group", g); err == nil {
			return nil, true // already there: groupadd will fail or change nothing
		}
		return []string{"groupdel", g}, true
	}
	return nil, false
}

// unitUndo maps a verb and the unit's current `systemctl is-enabled` state
// to the command restoring that state.
func (l *Local) unitUndo(ctx context.Context, verb, unit string) ([]string, bool) {
	inverse := map[string]string{"enable": "disable", "disable": "enable", "mask": "unmask", "unmask": "mask"}
	inv, ok := inverse[verb]
	if !ok {
		return nil, false
	}
	// is-enabled exits non-zero for disabled and masked units; the state
	// is on stdout either way.
	out, _ := l.Query(ctx, "systemctl", "is-enabled", unit)
	state := strings.TrimSpace(string(out))
	changes := map[string]bool{
		"enable":  state == "disabled",
		"disable": state == "enabled",
		"mask":    !strings.HasPrefix(state, "masked"),
		"unmask":  strings.HasPrefix(state, "masked"),
	}[verb]
	if !changes {
		return nil, true
	}
	return []string{"systemctl", inv, unit}, true
}
