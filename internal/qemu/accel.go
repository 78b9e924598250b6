package qemu

import (
	"os"
	"regexp"
)

// hwVirt matches the CPU flags of hardware virtualization (Intel VT-x,
// AMD-V) in /proc/cpuinfo.
var hwVirt = regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`)

// KVMUsable reports whether QEMU can run guests under KVM here: /dev/kvm
// exists and the CPU offers hardware virtualization. The device alone is
// not enough: on a microVM without nested virtualization /dev/kvm can be
// present and opened while a guest under it never reaches its bootloader
// (measured here: no serial output in 40 s, where TCG boots in under a
// minute), so such a host must stay on TCG.
func KVMUsable() bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/cpuinfo")
	return err == nil && kvmCPU(b)
}

func kvmCPU(cpuinfo []byte) bool { return hwVirt.Match(cpuinfo) }
