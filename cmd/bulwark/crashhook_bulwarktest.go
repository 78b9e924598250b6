//go:build linux && bulwarktest

package main

import (
	"os"
	"strconv"
	"syscall"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// crashHook is BULWARK_CRASH_AFTER=N, a hook compiled only into test builds
// (go build -tags bulwarktest): apply SIGKILLs itself right after its Nth
// journalled change, so tests can prove a rerun converges from any
// interruption point. The shipped binary is built without the tag
// (crashhook.go), so a stray variable in an operator's environment can
// never kill it half-way through hardening a host.
func crashHook() []host.Option {
	n, err := strconv.Atoi(os.Getenv("BULWARK_CRASH_AFTER"))
	if err != nil || n <= 0 {
		return nil
	}
	seen := 0
	return []host.Option{host.AfterChange(func(host.Change) {
		if seen++; seen == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	})}
}
