package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// TimerState is a timer unit's state plus its schedule.
type TimerState struct {
	UnitState
	Next time.Time // next elapse (realtime); zero when none is scheduled
	Last time.Time // last trigger; zero when it never fired
}

// Timer reads one timer unit and its org.freedesktop.systemd1.Timer
// properties.
func Timer(ctx context.Context, name string) (TimerState, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return TimerState{}, fmt.Errorf("probe: connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	u, err := unitState(ctx, conn, name)
	if err != nil {
		return TimerState{}, err
	}
	props, err := conn.GetUnitTypePropertiesContext(ctx, name, "Timer")
	if err != nil {
		return TimerState{}, fmt.Errorf("probe: timer %s: %w", name, err)
	}
	return TimerState{UnitState: u, Next: usec(props["NextElapseUSecRealtime"]), Last: usec(props["LastTriggerUSec"])}, nil
}

// ServiceResult reads a service's Result ("success", "exit-code", …): how
// its last run ended.
func ServiceResult(ctx context.Context, name string) (string, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return "", fmt.Errorf("probe: connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	p, err := conn.GetUnitTypePropertyContext(ctx, name, "Service", "Result")
	if err != nil {
		return "", fmt.Errorf("probe: service %s Result: %w", name, err)
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

// usec converts systemd's microseconds since the epoch; 0 and the
// "infinity" value mean "never".
func usec(v any) time.Time {
	u, ok := v.(uint64)
	if !ok || u == 0 || u == ^uint64(0) {
		return time.Time{}
	}
	return time.UnixMicro(int64(u))
}
