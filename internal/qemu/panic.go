//go:build linux

package qemu

import (
	"errors"
	"fmt"
	"strings"
)

// ErrPanicked is the guest kernel panicking before SSH answered: waiting
// out the rest of the boot timeout would change nothing, so the wait ends
// at once with the console's account of it.
var ErrPanicked = errors.New("guest kernel panicked")

// ErrTCGTextPoke is the one panic that is the emulator's, not the
// guest's: a kernel Oops on an int3 that no text patch claims. Linux
// patches its own code at run time (static keys, e.g. sched_clock's
// "Marking stable" at boot) by writing an int3 over the site, syncing
// every CPU, then the new bytes; under QEMU's multi-threaded TCG another
// vCPU was seen executing a stale translation of the int3 after the
// patch had finished: the Oops's "Code:" line shows the trapping site
// already holding its new byte (<90>, not <cc>). Seen here once in
// hundreds of boots, 3.4 s into the kernel; the same image boots on a
// relaunch. It wraps ErrPanicked.
var ErrTCGTextPoke = fmt.Errorf("%w: int3 from the kernel's run-time code patching (a multi-threaded TCG race, not the image)", ErrPanicked)

// panicIn returns the error for a console that shows a kernel panic, or
// nil. accel is the accelerator the guest ran on: only under TCG is an
// unclaimed int3 the emulator's fault.
func panicIn(console, accel string) error {
	i := strings.Index(console, "Kernel panic - not syncing")
	if i < 0 {
		return nil
	}
	line := console[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	line = strings.TrimSpace(line)
	if accel == "tcg" && strings.Contains(console[:i], "Oops: int3:") {
		return fmt.Errorf("%w (%s)", ErrTCGTextPoke, line)
	}
	return fmt.Errorf("%w (%s)", ErrPanicked, line)
}
