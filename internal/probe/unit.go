// Package probe reads the running system's state for verifiers: unit state
// over systemd's D-Bus API (goss's lesson: parsing systemctl output misreads
// static and masked units), and the kernel's socket tables. Every probe is
// read-only and returns what it read, so findings can quote it as evidence.
package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
)

// UnitState is what systemd says of one unit.
type UnitState struct {
	Name          string
	LoadState     string // loaded, not-found, masked
	ActiveState   string // active, inactive, failed, activating
	SubState      string // running, exited, listening, dead
	UnitFileState string // enabled, disabled, static, masked, indirect
}

// String is the evidence text: "nginx.service: loaded active/running enabled".
func (u UnitState) String() string {
	return fmt.Sprintf("%s: %s %s/%s %s", u.Name, u.LoadState, u.ActiveState, u.SubState, u.UnitFileState)
}

// Unit reads one unit's state from the system manager over D-Bus.
func Unit(ctx context.Context, name string) (UnitState, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return UnitState{}, fmt.Errorf("probe: connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	return unitState(ctx, conn, name)
}

// Units reads several units over one connection.
func Units(ctx context.Context, names ...string) ([]UnitState, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("probe: connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	out := make([]UnitState, 0, len(names))
	for _, n := range names {
		s, err := unitState(ctx, conn, n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func unitState(ctx context.Context, conn *dbus.Conn, name string) (UnitState, error) {
	props, err := conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return UnitState{}, fmt.Errorf("probe: unit %s: %w", name, err)
	}
	str := func(k string) string {
		v, _ := props[k].(string)
		return strings.TrimSpace(v)
	}
	return UnitState{
		Name:          name,
		LoadState:     str("LoadState"),
		ActiveState:   str("ActiveState"),
		SubState:      str("SubState"),
		UnitFileState: str("UnitFileState"),
	}, nil
}
