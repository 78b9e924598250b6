package updates

import (
	"os/exec"
	"testing"
)

// TestCompareVersions checks the ordering against dpkg itself where it is
// installed, and against deb-version(7)'s own examples always.
func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0-1", "1.0-2", -1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+deb13u1", -1},
		{"1.5.7+dfsg-1", "1.5.7+dfsg-1+deb13u1", -1},
		{"0~bulwark-test", "3.5.4-1~deb13u1", -1},
		{"1:0.9", "2.0", 1},
		{"2.10", "2.9", 1},
		{"2.010", "2.10", 0},
		{"1.0a", "1.0", 1},
		{"1.0a", "1.0+", -1},
		{"1.0~~", "1.0~", -1},
		{"6.12.58-1", "6.12.57-1", 1},
		{"2025b-0+deb13u1", "2025a-4", 1},
		{"1.2-3-4", "1.2-3", 1},
		{"", "0", 0}, // leading zeros, even all of them, do not count
	}
	dpkg, _ := exec.LookPath("dpkg")
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		if dpkg == "" || tt.a == "" {
			continue
		}
		for op, want := range map[string]bool{"lt": tt.want < 0, "eq": tt.want == 0, "gt": tt.want > 0} {
			err := exec.Command(dpkg, "--compare-versions", tt.a, op, tt.b).Run()
			if (err == nil) != want {
				t.Errorf("dpkg --compare-versions %s %s %s: %v; the table says %v", tt.a, op, tt.b, err, want)
			}
		}
	}
}
