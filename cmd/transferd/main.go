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

// run is main without the exit, so tests can run the daemon in a child
// process of the test binary. Each call builds a fresh command tree.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitcode.Report(stderr, "transferd", root.Execute())
}
