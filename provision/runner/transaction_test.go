package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// halfControl writes its first file, then fails at its second step: the
// shape of a real control dying half-way.
type halfControl struct{ fileControl }

func (c *halfControl) Apply(_ context.Context, h host.Host) error {
	if err := h.WriteFile(c.path, []byte(c.content), 0o644); err != nil {
		return err
	}
	return fmt.Errorf("%s: step reload: %w", c.id, errors.New("unit failed"))
}

// TestApplyRollsBackTheFailedControl: the failing control's own change is
// undone, the earlier control's is kept, the error names the control and
// the step, and the journal ends "failed".
func TestApplyRollsBackTheFailedControl(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/etc/half", []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := host.NewJournal(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.NewLocal(root, host.WithJournal(j))
	if err != nil {
		t.Fatal(err)
	}
	var families []string
	cs := []provision.Control{
		&fileControl{id: "a.ok", path: "/etc/ok", content: "ok\n"},
		&halfControl{fileControl{id: "b.half", path: "/etc/half", content: "after\n"}},
		&fileControl{id: "c.never", path: "/etc/never", content: "x\n"},
	}
	_, err = ApplyWith(context.Background(), h, cs, Options{BeforeFamily: func(_ context.Context, f string) error {
		families = append(families, f)
		return nil
	}})
	if err == nil {
		t.Fatal("apply succeeded; want the failure of b.half")
	}
	for _, want := range []string{"control b.half", "step reload", "rolled back 1 change(s) of b.half", j.ID()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for path, want := range map[string]string{"/etc/ok": "ok\n", "/etc/half": "before\n"} {
		if b, _ := os.ReadFile(root + path); string(b) != want {
			t.Errorf("%s = %q, want %q", path, b, want)
		}
	}
	if _, err := os.Stat(root + "/etc/never"); !os.IsNotExist(err) {
		t.Errorf("a control after the failure ran: %v", err)
	}
	if j.State() != host.StateFailed {
		t.Errorf("journal state %q, want %q", j.State(), host.StateFailed)
	}
	if strings.Join(families, ",") != "a,b" {
		t.Errorf("BeforeFamily saw %v, want [a b]", families)
	}
}

// TestApplyCompleteJournal: a clean run ends "complete".
func TestApplyCompleteJournal(t *testing.T) {
	root := t.TempDir()
	j, _ := host.NewJournal(root)
	h, _ := host.NewLocal(root, host.WithJournal(j))
	_, cs := controls()
	if _, err := ApplyWith(context.Background(), h, cs, Options{}); err != nil {
		t.Fatal(err)
	}
	if j.State() != host.StateComplete || len(j.Entries()) == 0 {
		t.Errorf("journal %q with %d entries; want complete with entries", j.State(), len(j.Entries()))
	}
}
