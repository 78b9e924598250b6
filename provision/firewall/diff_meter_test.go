package firewall

import (
	"net/netip"
	"testing"
)

// A meter fills with one element per source on each new connection (the
// e2e test's own SSH logins from 10.0.2.2); that is traffic, not drift. An
// extra element in a configured set (an admin network nobody put in the
// policy) is drift and must still be reported.
func TestDiffSetsMeterElementsAreNotDrift(t *testing.T) {
	src := netip.MustParseAddr("10.0.2.2")
	extra := []Range{{From: src, To: src}}
	tests := []struct {
		name  string
		kind  string
		drift int
	}{
		{"meter (dynamic) element", "ipv4_addr dynamic timeout 1m0s size 65535", 0},
		{"interval set element", "ipv4_addr interval", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := []setState{{Name: "s4", Kind: tt.kind}}
			got := []setState{{Name: "s4", Kind: tt.kind, Ranges: extra}}
			if d := diffSets(want, got); len(d) != tt.drift {
				t.Fatalf("diffSets = %+v, want %d drift", d, tt.drift)
			}
		})
	}
}
