//go:build linux

package local

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The provider is written against the SDK's gRPC interface directly, not
// with pulumi-go-provider: v1.4.1 imports pulumi/pkg/v3 (codegen/schema),
// and the pkg v3.253.0 that go.mod pins does not compile against the SDK
// v3.256.0 it also pins (pkg/v3/workspace uses SDK symbols that moved).

// ProviderName and ProviderVersion identify the plugin to the engine.
const (
	ProviderName    = "bulwark"
	ProviderVersion = "0.1.0"
	// PluginBinary is the name the engine looks for on PATH.
	PluginBinary = "pulumi-resource-" + ProviderName
)

// Serve runs the provider as a plugin: the engine starts it with its own
// address as the argument and reads the port it prints. It returns when
// the engine is done with it.
func Serve(ctx context.Context) error {
	return provider.MainContext(ctx, ProviderName, func(h *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{host: h}, nil
	})
}

// server implements bulwark:local:Machine (a QEMU VM) and bulwark:local:Rule
// (a recorded ingress rule: QEMU's forwards cannot filter by source, so on
// this target the guest's nftables enforces the same policy; one resource
// per rule, named like the AWS security group rules, makes a policy change
// preview as an update of exactly the changed rule, never of the machine).
type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
}

var opts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: ProviderVersion}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"bulwark","version":"` + ProviderVersion + `"}`}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure accepts secrets so the user data arrives as a secret, not as
// a plain value the engine would have to unwrap.
func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Check validates machine inputs up front, so bad input fails the preview
// and nothing is created.
func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	resp := &pulumirpc.CheckResponse{Inputs: req.GetNews()}
	if resource.URN(req.GetUrn()).Type() != MachineToken {
		return resp, nil
	}
	var in MachineArgs
	if err := decode(req.GetNews(), &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		resp.Failures = []*pulumirpc.CheckFailure{{Reason: err.Error()}}
	}
	return resp, nil
}

// Diff: a Rule changes in place; any change of a Machine's inputs replaces
// it (a VM's disks and forwards are fixed at start).
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := plugin.UnmarshalProperties(req.GetOldInputs(), opts)
	if err != nil {
		return nil, fmt.Errorf("local: diff: %w", err)
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), opts)
	if err != nil {
		return nil, fmt.Errorf("local: diff: %w", err)
	}
	d := olds.Diff(news)
	if d == nil || !d.AnyChanges() {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	var keys []string
	for _, k := range d.ChangedKeys() {
		keys = append(keys, string(k))
	}
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: keys}
	if resource.URN(req.GetUrn()).Type() == MachineToken {
		resp.Replaces = keys
		resp.DeleteBeforeReplace = true
	}
	return resp, nil
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn := resource.URN(req.GetUrn())
	if urn.Type() != MachineToken {
		return &pulumirpc.CreateResponse{Id: urn.Name(), Properties: req.GetProperties()}, nil
	}
	var in MachineArgs
	if err := decode(req.GetProperties(), &in); err != nil {
		return nil, err
	}
	st, err := createMachine(ctx, urn.Name(), in, req.GetPreview(), s.logger(ctx, urn))
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		// Outputs stay unknown until the VM exists.
		return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
	}
	props, err := encode(st)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: strconv.Itoa(st.Pid), Properties: props}, nil
}

// Update only ever happens to Rules (Machines are replaced): record the
// new inputs.
func (s *server) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn := resource.URN(req.GetUrn())
	if urn.Type() != MachineToken {
		return &emptypb.Empty{}, nil
	}
	var st MachineState
	if err := decode(req.GetProperties(), &st); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, deleteMachine(st, s.logger(ctx, urn))
}

// Read returns the recorded state (refresh does not probe the VM).
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (s *server) logger(ctx context.Context, urn resource.URN) logFunc {
	return func(status bool, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if status {
			_ = s.host.LogStatus(ctx, diag.Info, urn, msg)
			return
		}
		_ = s.host.Log(ctx, diag.Info, urn, msg)
	}
}

// decode turns wire properties (secrets unwrapped) into a Go struct.
func decode(in *structpb.Struct, dst any) error {
	props, err := plugin.UnmarshalProperties(in, plugin.MarshalOptions{KeepUnknowns: false})
	if err != nil {
		return fmt.Errorf("local: decode properties: %w", err)
	}
	data, err := json.Marshal(props.Mappable())
	if err != nil {
		return fmt.Errorf("local: decode properties: %w", err)
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return fmt.Errorf("local: decode properties: %w", err)
	}
	return nil
}

// encode is decode's inverse; userData goes back as a secret so the key
// never lands in plain state.
func encode(st MachineState) (*structpb.Struct, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("local: encode state: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("local: encode state: %w", err)
	}
	props := resource.NewPropertyMapFromMap(m)
	props["userData"] = resource.MakeSecret(resource.NewStringProperty(st.UserData))
	return plugin.MarshalProperties(props, opts)
}
