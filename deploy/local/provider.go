//go:build linux

package local

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// The provider is built with pulumi-go-provider's infer package: typed
// inputs and outputs (MachineArgs/MachineState, RuleArgs), secrets from the
// provider:"secret" tag, and only the lifecycle methods each resource
// needs.

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
	return p.RunProvider(ctx, ProviderName, ProviderVersion, Provider())
}

// Provider serves bulwark:local:Machine (a QEMU VM) and bulwark:local:Rule
// (a recorded ingress rule: QEMU's forwards cannot filter by source, so on
// this target the guest's nftables enforces the same policy; one resource
// per rule, named like the AWS security group rules, makes a policy change
// preview as an update of exactly the changed rule, never of the machine).
func Provider() p.Provider {
	return infer.Provider(infer.Options{
		Resources: []infer.InferredResource{
			infer.Resource(&Machine{}),
			infer.Resource(&Rule{}),
		},
	})
}

// Machine: Create, Check, Diff and Delete; no Update, because a VM's disks
// and forwards are fixed at start, so every input change replaces it.
var (
	_ infer.CustomCheck[MachineArgs]                        = (*Machine)(nil)
	_ infer.CustomDiff[MachineArgs, MachineState]           = (*Machine)(nil)
	_ infer.CustomDelete[MachineState]                      = (*Machine)(nil)
	_ infer.ExplicitDependencies[MachineArgs, MachineState] = (*Machine)(nil)
)

// Annotate sets the token: infer would derive "local:Machine" from the Go
// type too, but the token is an interface the program relies on.
func (m *Machine) Annotate(a infer.Annotator) {
	a.SetToken("local", "Machine")
	a.Describe(m, "The appliance image running under QEMU with a data disk and secret user data.")
}

// Check validates machine inputs up front, so bad input fails the preview
// and nothing is created. Inputs still unknown during a preview are left
// to Create, which validates again.
func (m *Machine) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[MachineArgs], error) {
	in, failures, err := infer.DefaultCheck[MachineArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 || property.New(req.NewInputs).HasComputed() {
		return infer.CheckResponse[MachineArgs]{Inputs: in, Failures: failures}, err
	}
	return infer.CheckResponse[MachineArgs]{Inputs: in, Failures: checkFailures(in.validate())}, nil
}

// checkFailures turns validate's joined errors into one failure each.
func checkFailures(err error) []p.CheckFailure {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []p.CheckFailure
	for _, e := range errs {
		out = append(out, p.CheckFailure{Reason: e.Error()})
	}
	return out
}

// Create starts the VM and waits until it is healthy; a preview only
// validates (outputs other than the inputs stay unknown).
func (m *Machine) Create(ctx context.Context, req infer.CreateRequest[MachineArgs]) (infer.CreateResponse[MachineState], error) {
	st, err := createMachine(ctx, req.Name, req.Inputs, req.DryRun, engineLog(ctx))
	if err != nil || req.DryRun {
		return infer.CreateResponse[MachineState]{Output: st}, err
	}
	return infer.CreateResponse[MachineState]{ID: strconv.Itoa(st.Pid), Output: st}, nil
}

// Diff marks every changed input as a replacement and asks for delete
// before replace: two VMs of one appliance would compete for the same
// state directory and host resources (infer's default diff cannot ask
// for that).
func (m *Machine) Diff(_ context.Context, req infer.DiffRequest[MachineArgs, MachineState]) (infer.DiffResponse, error) {
	keys := changedKeys(req.State.MachineArgs, req.Inputs)
	resp := infer.DiffResponse{HasChanges: len(keys) > 0, DeleteBeforeReplace: true,
		DetailedDiff: map[string]p.PropertyDiff{}}
	for _, k := range keys {
		resp.DetailedDiff[k] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	return resp, nil
}

// changedKeys compares two argument sets by their wire names.
func changedKeys(old, next MachineArgs) []string {
	a, b := wireFields(old), wireFields(next)
	var keys []string
	for k, v := range a {
		if !reflect.DeepEqual(v, b[k]) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// wireFields maps a struct's pulumi-tagged fields, embedded ones
// included, to their values by wire name; empty slices and maps become
// nil so that an empty list equals an absent one.
func wireFields(v any) map[string]any {
	out := map[string]any{}
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f, fv := rv.Type().Field(i), rv.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, wireFields(fv.Interface()))
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ",")
		if name == "" {
			continue
		}
		out[name] = fv.Interface()
		if (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0 {
			out[name] = nil
		}
	}
	return out
}

// Delete stops QEMU and removes the overlay, data disk and logs.
func (m *Machine) Delete(ctx context.Context, req infer.DeleteRequest[MachineState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, deleteMachine(req.State, engineLog(ctx))
}

// WireDependencies keeps the user data secret in state whatever the
// engine sent: the default flow only copies secretness from the input.
func (m *Machine) WireDependencies(f infer.FieldSelector, _ *MachineArgs, out *MachineState) {
	f.OutputField(&out.UserData).AlwaysSecret()
}

// Rule is the bulwark:local:Rule resource: a recorded ingress rule that
// changes in place (it has Update, so infer's diff never replaces it).
type Rule struct{}

// RuleArgs are a rule's inputs and, unchanged, its state.
type RuleArgs struct {
	Proto       string   `pulumi:"proto"`
	Port        int      `pulumi:"port"`
	CIDRv4      []string `pulumi:"cidrV4,optional"`
	CIDRv6      []string `pulumi:"cidrV6,optional"`
	Description string   `pulumi:"description,optional"`
}

var _ infer.CustomUpdate[RuleArgs, RuleArgs] = (*Rule)(nil)

// Annotate sets the token the program registers rules with.
func (r *Rule) Annotate(a infer.Annotator) {
	a.SetToken("local", "Rule")
	a.Describe(r, "An ingress rule of the policy, enforced by the guest's nftables.")
}

// Create records the rule; its ID is the resource name.
func (r *Rule) Create(_ context.Context, req infer.CreateRequest[RuleArgs]) (infer.CreateResponse[RuleArgs], error) {
	return infer.CreateResponse[RuleArgs]{ID: req.Name, Output: req.Inputs}, nil
}

// Update records the new inputs (a new admin CIDR, say).
func (r *Rule) Update(_ context.Context, req infer.UpdateRequest[RuleArgs, RuleArgs]) (infer.UpdateResponse[RuleArgs], error) {
	return infer.UpdateResponse[RuleArgs]{Output: req.Inputs}, nil
}

// engineLog sends progress to the engine, which `bulwark deploy` streams:
// status lines replace each other, plain lines stay in the log.
func engineLog(ctx context.Context) logFunc {
	l := p.GetLogger(ctx)
	return func(status bool, format string, args ...any) {
		if status {
			l.InfoStatusf(format, args...)
			return
		}
		l.Infof(format, args...)
	}
}
