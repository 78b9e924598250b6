// Package mocktest runs Pulumi programs under the SDK's mock resource
// monitor and records what they register, so tests assert on the resources a
// program would create (type, name, parent, inputs with secrets kept) rather
// than on Go structs. Cloud APIs cannot run here; everything else in the
// program is the real code.
package mocktest

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Resource is one registration as the mock monitor saw it.
type Resource struct {
	Type   string
	Name   string
	Parent string // parent URN; empty for the stack's direct children
	URN    string
	Custom bool
	Inputs resource.PropertyMap
}

// Outputs adds provider-computed outputs (ARNs, DNS names) for a type
// token; the mock returns the inputs plus these.
type Outputs func(args pulumi.MockResourceArgs) resource.PropertyMap

// Mocks implements pulumi.MockResourceMonitor and records registrations in
// order.
type Mocks struct {
	Computed Outputs

	mu        sync.Mutex
	resources []Resource
	outputs   int
}

// NewResource records the registration and echoes the inputs as state.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	state := args.Inputs.Copy()
	if m.Computed != nil {
		for k, v := range m.Computed(args) {
			state[k] = v
		}
	}
	r := Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: args.Inputs}
	if rpc := args.RegisterRPC; rpc != nil {
		r.Parent = rpc.GetParent()
	}
	r.URN = fmt.Sprintf("urn:pulumi:test::bulwark::%s::%s", args.TypeToken, args.Name)
	m.mu.Lock()
	m.resources = append(m.resources, r)
	m.mu.Unlock()
	return args.Name + "-id", state, nil
}

// Call fails every invoke: the programs under test make none, and an
// unexpected one should be loud.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("mocktest: unexpected invoke %s", args.Token)
}

// RegisterResourceOutputs counts component output registrations.
func (m *Mocks) RegisterResourceOutputs() (*emptypb.Empty, error) {
	m.mu.Lock()
	m.outputs++
	m.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// Resources returns the registrations in order.
func (m *Mocks) Resources() []Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.resources)
}

// OutputRegistrations is how many times RegisterResourceOutputs was called.
func (m *Mocks) OutputRegistrations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outputs
}

// OfType returns the registrations of one type token.
func (m *Mocks) OfType(token string) []Resource {
	var out []Resource
	for _, r := range m.Resources() {
		if r.Type == token {
			out = append(out, r)
		}
	}
	return out
}

// Run runs prog under the mocks as project "bulwark", stack "test".
func Run(m *Mocks, prog pulumi.RunFunc) error {
	return pulumi.RunErr(prog, pulumi.WithMocks("bulwark", "test", m))
}

// Value is an output's resolved value and whether it was secret, captured
// while the program runs and read after Run returns.
type Value struct {
	mu     sync.Mutex
	v      any
	secret bool
	done   bool
}

// Capture arranges for o's value to be recorded; call it inside the
// program. Pulumi resolves outputs asynchronously and Run waits for them.
func Capture(o pulumi.Output) *Value {
	c := &Value{}
	secret := pulumi.IsSecret(o)
	pulumi.Unsecret(o).ApplyT(func(v any) any {
		c.mu.Lock()
		c.v, c.secret, c.done = v, secret, true
		c.mu.Unlock()
		return v
	})
	return c
}

// Get returns the value and its secretness; ok is false if it never resolved.
func (c *Value) Get() (v any, secret, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v, c.secret, c.done
}

// Strings collects every plain (non-secret) string anywhere in a property
// map; tests use it to prove a secret never leaks into plain state.
func Strings(pm resource.PropertyMap) []string {
	var out []string
	var walk func(v resource.PropertyValue)
	walk = func(v resource.PropertyValue) {
		switch {
		case v.IsSecret():
			return
		case v.IsString():
			out = append(out, v.StringValue())
		case v.IsArray():
			for _, e := range v.ArrayValue() {
				walk(e)
			}
		case v.IsObject():
			for _, e := range v.ObjectValue() {
				walk(e)
			}
		}
	}
	for _, v := range pm {
		walk(v)
	}
	return out
}

// Contains reports whether any plain string in pm contains s.
func Contains(pm resource.PropertyMap, s string) bool {
	return slices.ContainsFunc(Strings(pm), func(x string) bool { return strings.Contains(x, s) })
}
