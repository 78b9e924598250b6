//go:build linux && !bulwarktest

package main

import "github.com/bulwark-appliance/bulwark/internal/host"

// crashHook is empty in the binary that ships: nothing in its environment
// can make apply kill itself. Test builds (-tags bulwarktest) have the
// BULWARK_CRASH_AFTER hook of crashhook_bulwarktest.go instead.
func crashHook() []host.Option { return nil }
