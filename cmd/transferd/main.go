//go:build linux

// Command transferd is the appliance's secure file-transfer service. It runs
// behind nginx on a Unix socket (socket-activated by transferd.socket).
package main

import (
	"io"
	"os"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit (exitcode.Run), so tests can run the daemon
// in a child process of the test binary; each call builds a fresh tree.
func run(args []string, stdout, stderr io.Writer) int {
	return exitcode.Run(newRootCmd(), args, stdout, stderr)
}
