package qemu

import "testing"

func TestKVMCPU(t *testing.T) {
	tests := []struct {
		name, cpuinfo string
		want          bool
	}{
		{"intel vt-x", "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx ept\n", true},
		{"amd-v", "flags\t\t: fpu svm npt\n", true},
		{"no hardware virtualization", "flags\t\t: fpu vme de pse tsc msr pae sse2 hypervisor\n", false},
		{"vmx only in another field", "model name\t: vmx-like cpu\nflags\t\t: fpu\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kvmCPU([]byte(tt.cpuinfo)); got != tt.want {
				t.Errorf("kvmCPU = %v, want %v", got, tt.want)
			}
		})
	}
}
