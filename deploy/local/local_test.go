//go:build linux

package local

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
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

// rpcServer is the provider as the engine sees it: the gRPC server
// pulumi-go-provider builds around the infer resources. With an engine
// address, progress logs go to that engine.
func rpcServer(t *testing.T, engine string) pulumirpc.ResourceProviderServer {
	t.Helper()
	var host *provider.HostClient
	if engine != "" {
		h, err := provider.NewHostClient(engine)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		host = h
	}
	s, err := p.RawServer(ProviderName, ProviderVersion, Provider())(host)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// engine records the log lines the provider sends, like pulumi's engine
// that `bulwark deploy` streams from.
type engine struct {
	pulumirpc.UnimplementedEngineServer
	mu   sync.Mutex
	logs []*pulumirpc.LogRequest
}

func (e *engine) Log(_ context.Context, req *pulumirpc.LogRequest) (*emptypb.Empty, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logs = append(e.logs, req)
	return &emptypb.Empty{}, nil
}

func (e *engine) messages() []*pulumirpc.LogRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.logs)
}

func startEngine(t *testing.T) (*engine, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, srv := &engine{}, grpc.NewServer()
	pulumirpc.RegisterEngineServer(srv, e)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return e, lis.Addr().String()
}

const (
	machineURN = "urn:pulumi:s::p::bulwark:index:Appliance$" + MachineToken + "::b"
	ruleURN    = "urn:pulumi:s::p::bulwark:index:Appliance$" + RuleToken + "::b-in-tcp-8443"
)

var wireOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

// props turns MachineArgs, MachineState or a map into wire properties
// named like the program sends them.
func props(t *testing.T, v any) resource.PropertyMap {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		m = wireFields(v)
	}
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return resource.NewPropertyMapFromMap(m)
}

func wire(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(m, wireOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unwire(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := plugin.UnmarshalProperties(s, wireOpts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Check, the engine's first call, refuses bad machine input with the
// field named (so a preview fails and nothing is created) and returns the
// user data as a secret even when the program sent it plain.
func TestCheck(t *testing.T) {
	img, dir := image(t), t.TempDir()
	s := rpcServer(t, "")
	tests := []struct {
		name, want string
		edit       func(resource.PropertyMap)
	}{
		{"ok", "", func(resource.PropertyMap) {}},
		{"data disk", "dataDiskGiB 0", func(m resource.PropertyMap) { m["dataDiskGiB"] = resource.NewNumberProperty(0) }},
		{"health", `health "tcp"`, func(m resource.PropertyMap) { m["health"] = resource.NewStringProperty("tcp") }},
		{"missing image", "image", func(m resource.PropertyMap) { delete(m, "image") }},
		{"relative state dir", "stateDir", func(m resource.PropertyMap) { m["stateDir"] = resource.NewStringProperty("rel") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := props(t, goodArgs(img, dir))
			tt.edit(in)
			resp, err := s.Check(context.Background(), &pulumirpc.CheckRequest{Urn: machineURN, News: wire(t, in)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range resp.GetFailures() {
				got = append(got, f.GetProperty()+": "+f.GetReason())
			}
			if tt.want == "" && len(got) > 0 || tt.want != "" && !strings.Contains(strings.Join(got, "; "), tt.want) {
				t.Fatalf("failures %q, want %q", got, tt.want)
			}
			if tt.want == "" && !unwire(t, resp.GetInputs())["userData"].IsSecret() {
				t.Fatal("checked inputs carry userData in plain text")
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Fatalf("check created %d entries in the state dir", len(entries))
			}
		})
	}
}

// A rule change is an in-place update; any machine change replaces it,
// deleting the old VM first.
func TestDiff(t *testing.T) {
	s := rpcServer(t, "")
	rule := func(cidrs ...any) resource.PropertyMap {
		return props(t, map[string]any{"proto": "tcp", "port": 8443, "cidrV4": cidrs, "description": "admin"})
	}
	old := MachineState{MachineArgs: goodArgs("/i.qcow2", "/s"), Pid: 42, Dir: "/s/b-1"}
	bigger := old.MachineArgs
	bigger.MemoryMiB = 256
	tests := []struct {
		name, urn   string
		old, new    resource.PropertyMap
		want        pulumirpc.DiffResponse_DiffChanges
		wantReplace []string
	}{
		{"rule same", ruleURN, rule("10.0.0.0/8"), rule("10.0.0.0/8"), pulumirpc.DiffResponse_DIFF_NONE, nil},
		{"rule new cidr", ruleURN, rule("10.0.0.0/8"), rule("10.0.0.0/8", "203.0.113.0/24"), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"machine same", machineURN, props(t, old), props(t, old.MachineArgs), pulumirpc.DiffResponse_DIFF_NONE, nil},
		{"machine memory", machineURN, props(t, old), props(t, bigger), pulumirpc.DiffResponse_DIFF_SOME, []string{"memoryMiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldInputs := tt.old
			if tt.urn == machineURN {
				oldInputs = props(t, old.MachineArgs)
			}
			resp, err := s.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: tt.urn, Id: "x",
				Olds: wire(t, tt.old), OldInputs: wire(t, oldInputs), News: wire(t, tt.new)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetChanges() != tt.want || !slices.Equal(resp.GetReplaces(), tt.wantReplace) {
				t.Fatalf("diff %v replaces %v, want %v replaces %v", resp.GetChanges(), resp.GetReplaces(), tt.want, tt.wantReplace)
			}
			if len(tt.wantReplace) > 0 && !resp.GetDeleteBeforeReplace() {
				t.Fatal("machine replacement does not delete the old VM first")
			}
		})
	}
}

// The state a machine create returns carries the user data (the LUKS
// key) only as a secret, even when it arrives plain; in a preview the
// machine's own outputs are unknown and nothing is started.
func TestCreatePreviewKeepsUserDataSecret(t *testing.T) {
	img, dir := image(t), t.TempDir()
	a := goodArgs(img, dir)
	a.UserData = "luks-key-material"
	resp, err := rpcServer(t, "").Create(context.Background(), &pulumirpc.CreateRequest{Urn: machineURN,
		Properties: wire(t, props(t, a)), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	out := unwire(t, resp.GetProperties())
	if !out["userData"].IsSecret() {
		t.Fatal("userData is not a secret in the returned state")
	}
	if !out["pid"].IsComputed() || !out["url"].IsComputed() {
		t.Fatalf("preview outputs pid %v url %v, want unknown", out["pid"], out["url"])
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("preview created %v", entries)
	}
}

// A machine that never becomes healthy (a blank disk boots nothing) fails
// Create, the progress reaches the engine's log, and Create removes the
// QEMU process and its disks.
func TestCreateFailureLeavesNothing(t *testing.T) {
	img, dir := image(t), t.TempDir()
	a := goodArgs(img, dir)
	a.BootTimeoutSecond = 3
	eng, addr := startEngine(t)
	_, err := rpcServer(t, addr).Create(context.Background(), &pulumirpc.CreateRequest{Urn: machineURN,
		Properties: wire(t, props(t, a))})
	if err == nil || !strings.Contains(err.Error(), "not healthy within 3s") {
		t.Fatalf("err %v, want not healthy", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("failed create left %v", entries)
	}
	if out, _ := exec.Command("pgrep", "-f", dir).Output(); len(out) > 0 {
		t.Fatalf("QEMU still running: pids %s", out)
	}
	logs := eng.messages()
	if !slices.ContainsFunc(logs, func(l *pulumirpc.LogRequest) bool {
		return strings.Contains(l.GetMessage(), "waiting for ssh") && l.GetUrn() == machineURN
	}) {
		t.Fatalf("engine got no progress line for %s: %v", machineURN, logs)
	}
}

// Delete, given the recorded state, stops the running QEMU and removes
// the machine directory with its overlay and data disk.
func TestDeleteStopsQEMU(t *testing.T) {
	img, dir := image(t), t.TempDir()
	st := MachineState{MachineArgs: goodArgs(img, dir)}
	var err error
	if st.Dir, err = os.MkdirTemp(dir, "b-"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.disks(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := st.start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(5 * time.Second) }) // only matters on failure
	st.Pid, st.PidFile, st.ConsoleLog = d.Pid, d.PidFile, d.ConsoleLog
	state := props(t, st)
	state["userData"] = resource.MakeSecret(state["userData"])
	_, err = rpcServer(t, "").Delete(ctx, &pulumirpc.DeleteRequest{Urn: machineURN, Id: "1",
		Properties: wire(t, state), OldInputs: wire(t, props(t, st.MachineArgs))})
	if err != nil {
		t.Fatal(err)
	}
	if d.Running() {
		t.Fatalf("QEMU pid %d still running after Delete", d.Pid)
	}
	if _, err := os.Stat(st.Dir); err == nil {
		t.Fatalf("machine dir %s left after Delete", st.Dir)
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
	if err := writeShim(dir, []string{"/opt/it's/bulwark-deploy", "__deploy-provider"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-n", filepath.Join(dir, PluginBinary)).CombinedOutput()
	if err != nil {
		t.Fatalf("shim is not valid sh: %v %s", err, out)
	}
}

// The schema infer derives names the tokens the program registers and
// marks the user data secret, on the machine's inputs and its state.
func TestSchema(t *testing.T) {
	resp, err := rpcServer(t, "").GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Name      string
		Resources map[string]struct {
			InputProperties map[string]struct{ Secret bool }
			Properties      map[string]struct{ Secret bool }
		}
	}
	if err := json.Unmarshal([]byte(resp.GetSchema()), &spec); err != nil {
		t.Fatal(err)
	}
	m, ok := spec.Resources[MachineToken]
	if _, rule := spec.Resources[RuleToken]; spec.Name != ProviderName || !ok || !rule {
		t.Fatalf("schema %s has resources %v, want %s and %s", spec.Name, slices.Collect(maps.Keys(spec.Resources)), MachineToken, RuleToken)
	}
	if !m.InputProperties["userData"].Secret || !m.Properties["userData"].Secret {
		t.Fatalf("userData secret: input %v, state %v", m.InputProperties["userData"].Secret, m.Properties["userData"].Secret)
	}
}
