//go:build linux

package qemu

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestPanicIn: a console that shows a kernel panic ends the wait for SSH,
// and only the unclaimed-int3 Oops under TCG is the emulator's race. The
// int3 console is the real one (kernel 6.12, Debian 13 image, OVMF, two
// vCPUs under multi-threaded TCG).
func TestPanicIn(t *testing.T) {
	int3, err := os.ReadFile("testdata/console-tcg-int3.txt")
	if err != nil {
		t.Fatal(err)
	}
	vfs := "[    2.1] VFS: Cannot open root device \"vda1\"\n[    2.2] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"
	for _, tc := range []struct {
		name, console, accel string
		want                 error // nil: no panic
		line                 string
	}{
		{"booting", "[    1.0] Linux version 6.12\n[    3.3] sched_clock: Marking stable\n", "tcg", nil, ""},
		{"tcg int3 race", string(int3), "tcg", ErrTCGTextPoke, "Fatal exception in interrupt"},
		{"int3 under kvm is the guest's", string(int3), "kvm", ErrPanicked, "Fatal exception in interrupt"},
		{"other panic under tcg", vfs, "tcg", ErrPanicked, "Unable to mount root fs"},
		{"an Oops alone does not end the boot", "[    3.3] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n", "tcg", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := panicIn(tc.console, tc.accel)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("panicIn = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("panicIn = %v, want %v", err, tc.want)
			}
			if tc.want == ErrPanicked && errors.Is(err, ErrTCGTextPoke) {
				t.Errorf("panicIn = %v: a panic that is not TCG's race must not be relaunched", err)
			}
			if !strings.Contains(err.Error(), tc.line) {
				t.Errorf("panicIn = %v, want the panic line naming %q", err, tc.line)
			}
		})
	}
}
