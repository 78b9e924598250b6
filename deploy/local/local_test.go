//go:build linux

package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

func image(t *testing.T) string {
	t.Helper()
	testutil.RequireTools(t, "qemu-img", "qemu-system-x86_64")
	img := filepath.Join(t.TempDir(), "blank.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	return img
}

func goodArgs(img, dir string) MachineArgs {
	return MachineArgs{Image: img, DataDiskGiB: 1, Ports: []int{443}, UserData: "#cloud-config\n", Health: "ssh", AdminPort: 8443, StateDir: dir, MemoryMiB: 128, CPUs: 1}
}

// Bad input is refused with the field named, before anything is created.
func TestValidate(t *testing.T) {
	img, dir := image(t), t.TempDir()
	tests := []struct {
		name, want string
		edit       func(*MachineArgs)
	}{
		{"ok", "", func(*MachineArgs) {}},
		{"missing image", "image:", func(a *MachineArgs) { a.Image = filepath.Join(dir, "nope.qcow2") }},
		{"raw image", "want a .qcow2", func(a *MachineArgs) { a.Image = strings.TrimSuffix(img, ".qcow2") }},
		{"data disk", "dataDiskGiB 0", func(a *MachineArgs) { a.DataDiskGiB = 0 }},
		{"health", `health "tcp"`, func(a *MachineArgs) { a.Health = "tcp" }},
		{"state dir", "stateDir", func(a *MachineArgs) { a.StateDir = "rel" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := goodArgs(img, dir)
			tt.edit(&a)
			_, err := createMachine(context.Background(), "m", a, true, func(bool, string, ...any) {})
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Fatalf("validation created %d entries in the state dir", len(entries))
			}
		})
	}
}

// A machine that never becomes healthy (a blank disk boots nothing) fails
// Create, and Create removes the QEMU process and its disks.
func TestCreateFailureLeavesNothing(t *testing.T) {
	img, dir := image(t), t.TempDir()
	a := goodArgs(img, dir)
	a.BootTimeoutSecond = 3
	_, err := createMachine(context.Background(), "m", a, false, func(bool, string, ...any) {})
	if err == nil || !strings.Contains(err.Error(), "not healthy within 3s") {
		t.Fatalf("err %v, want not healthy", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("failed create left %v", entries)
	}
	if out, _ := exec.Command("pgrep", "-f", dir).Output(); len(out) > 0 {
		t.Fatalf("QEMU still running: pids %s", out)
	}
}

func wire(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(resource.NewPropertyMapFromMap(m), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A rule change is an in-place update; any machine change replaces it.
func TestDiff(t *testing.T) {
	rule := "urn:pulumi:s::p::bulwark:index:Appliance$" + RuleToken + "::b-in-tcp-8443"
	mach := "urn:pulumi:s::p::bulwark:index:Appliance$" + MachineToken + "::b"
	tests := []struct {
		name, urn   string
		old, new    map[string]any
		want        pulumirpc.DiffResponse_DiffChanges
		wantReplace bool
	}{
		{"rule same", rule, map[string]any{"port": 8443}, map[string]any{"port": 8443}, pulumirpc.DiffResponse_DIFF_NONE, false},
		{"rule cidr", rule, map[string]any{"cidrV4": []any{"10.0.0.0/8"}}, map[string]any{"cidrV4": []any{"10.0.0.0/8", "203.0.113.0/24"}}, pulumirpc.DiffResponse_DIFF_SOME, false},
		{"machine memory", mach, map[string]any{"memoryMiB": 1024}, map[string]any{"memoryMiB": 2048}, pulumirpc.DiffResponse_DIFF_SOME, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := (&server{}).Diff(context.Background(), &pulumirpc.DiffRequest{Urn: tt.urn, OldInputs: wire(t, tt.old), News: wire(t, tt.new)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetChanges() != tt.want || (len(resp.GetReplaces()) > 0) != tt.wantReplace {
				t.Fatalf("diff %v replaces %v, want %v replace=%v", resp.GetChanges(), resp.GetReplaces(), tt.want, tt.wantReplace)
			}
		})
	}
}

// The state the provider returns carries the user data (the LUKS key)
// only as a secret, and decodes back to the same machine.
func TestEncodeKeepsUserDataSecret(t *testing.T) {
	st := MachineState{MachineArgs: goodArgs("/i.qcow2", "/s"), Pid: 42, HostPorts: map[string]int{"22": 2222}}
	st.UserData = "luks-key-material"
	s, err := encode(st)
	if err != nil {
		t.Fatal(err)
	}
	props, err := plugin.UnmarshalProperties(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !props["userData"].IsSecret() {
		t.Fatal("userData is not a secret in the returned state")
	}
	var back MachineState
	if err := decode(s, &back); err != nil {
		t.Fatal(err)
	}
	if back.UserData != st.UserData || back.Pid != 42 || back.HostPorts["22"] != 2222 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestPassphraseAndShim(t *testing.T) {
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "")
	dir := t.TempDir()
	p1, err := passphrase(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := passphrase(dir)
	fi, err := os.Stat(filepath.Join(dir, "passphrase"))
	if err != nil || fi.Mode().Perm() != 0o600 || p1 != p2 || len(p1) < 40 {
		t.Fatalf("passphrase file %v mode %v, stable %v", err, fi.Mode(), p1 == p2)
	}
	if err := writeShim(dir, []string{"/opt/it's/bulwark", "__deploy-provider"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-n", filepath.Join(dir, PluginBinary)).CombinedOutput()
	if err != nil {
		t.Fatalf("shim is not valid sh: %v %s", err, out)
	}
}
