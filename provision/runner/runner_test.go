package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// fileControl is a minimal real control: it writes one file through the
// host and verifies it, so the runner is tested against a real directory.
type fileControl struct {
	id, path, content string
	err               error
	silent            bool
}

func (c *fileControl) Meta() provision.Meta {
	return provision.Meta{ID: c.id, Title: c.id, Rows: []string{"SOC2:CC6"}}
}
func (c *fileControl) Apply(_ context.Context, h host.Host) error {
	if c.err != nil {
		return c.err
	}
	return h.WriteFile(c.path, []byte(c.content), 0o644)
}
func (c *fileControl) Verify(_ context.Context, h host.Host) []provision.Finding {
	if c.silent {
		return nil
	}
	b, _ := h.ReadFile(c.path)
	st := provision.Pass
	if string(b) != c.content {
		st = provision.Fail
	}
	return []provision.Finding{{ControlID: c.id, Property: "file " + c.path, Status: st}}
}

func controls() ([]provision.Family, []provision.Control) {
	cs := []provision.Control{
		&fileControl{id: "b.one", path: "/etc/b1", content: "1"},
		&fileControl{id: "a.two", path: "/etc/a2", content: "22"},
		&fileControl{id: "a.three", path: "/etc/a3", content: "333"},
	}
	return []provision.Family{{Name: "a"}, {Name: "b"}}, cs
}

func TestSelect(t *testing.T) {
	fams, cs := controls()
	tests := []struct {
		only    []string
		want    string
		wantErr string
	}{
		{nil, "b.one a.two a.three", ""},
		{[]string{"a"}, "a.two a.three", ""},
		{[]string{"a.three", "b"}, "b.one a.three", ""}, // apply order kept
		{[]string{"c"}, "", `--only "c": no such control or family`},
	}
	for _, tt := range tests {
		got, err := Select(fams, cs, tt.only)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Select(%v) error = %v; want %q", tt.only, err, tt.wantErr)
			}
			continue
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.Meta().ID)
		}
		if err != nil || strings.Join(ids, " ") != tt.want {
			t.Errorf("Select(%v) = %v, %v; want %s", tt.only, ids, err, tt.want)
		}
	}
}

func TestApplyTwiceThenVerify(t *testing.T) {
	_, cs := controls()
	root := t.TempDir()
	ctx := context.Background()
	h, _ := host.NewLocal(root)
	rep, err := Apply(ctx, h, cs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed() != 3 || len(rep.Controls) != 3 || rep.Controls[1].ID != "a.two" ||
		len(rep.Controls[1].Changes) != 1 || rep.Controls[1].Changes[0].Path != "/etc/a2" {
		t.Errorf("first apply: %+v", rep)
	}
	h2, _ := host.NewLocal(root)
	rep, _ = Apply(ctx, h2, cs)
	if rep.Changed() != 0 || len(rep.Controls) != 3 {
		t.Errorf("second apply changed %d of %d controls; want 0 of 3", rep.Changed(), len(rep.Controls))
	}
	res := Verify(ctx, h2, cs, "abc")
	if res.Failed() || res.Findings[0].ControlID != "a.three" || res.PolicyHash != "abc" || res.Target != root {
		t.Errorf("verify results unsorted or failed: %+v", res)
	}
}

func TestApplyStopsAtFirstError(t *testing.T) {
	cs := []provision.Control{
		&fileControl{id: "a.ok", path: "/etc/ok", content: "x"},
		&fileControl{id: "a.bad", err: errors.New("a.bad: write /etc/bad: disk full")},
		&fileControl{id: "a.never", path: "/etc/never", content: "x"},
	}
	h, _ := host.NewLocal(t.TempDir())
	rep, err := Apply(context.Background(), h, cs)
	if err == nil || !strings.Contains(err.Error(), "control a.bad") {
		t.Fatalf("Apply error = %v; want it to name a.bad", err)
	}
	if len(rep.Controls) != 2 || len(h.Changes()) != 1 {
		t.Errorf("apply went on past the failure: %+v", rep)
	}
}

func TestVerifySilentControlFails(t *testing.T) {
	h, _ := host.NewLocal(t.TempDir())
	res := Verify(context.Background(), h, []provision.Control{&fileControl{id: "a.mute", silent: true}}, "")
	if !res.Failed() || res.Findings[0].ControlID != "a.mute" {
		t.Errorf("a control without findings did not fail: %+v", res.Findings)
	}
}
