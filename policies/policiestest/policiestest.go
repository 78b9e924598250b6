// Package policiestest gives tests the shipped default policy the way
// production gets it: through policies.Load, with its merge, defaults and
// validation. Decoding policies.DefaultYAML() directly would test a policy
// no binary ever loads. It is a package of its own because package
// policies' tests use internal/testutil, so testutil cannot import
// policies.
package policiestest

import (
	"testing"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Default returns a fresh copy of the default policy (policies.Load("")),
// failing the test if it does not load. Each call loads anew, so a test
// may change the result without affecting another.
func Default(t testing.TB) *policies.Policy {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatalf("load default policy: %v", err)
	}
	return p
}
