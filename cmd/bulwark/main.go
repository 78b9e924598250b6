//go:build linux

// Command bulwark builds, hardens and proves a secure file-transfer
// appliance: it applies the policy's controls, verifies them, and turns the
// results into compliance evidence. Each subcommand lives in its own file;
// the work lives in the packages they call.
package main

import (
	"io"
	"os"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit. Each call builds a fresh command tree, so
// tests can run the CLI in-process any number of times and no flag value
// carries over from one run to the next.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitcode.Report(stderr, "bulwark", root.Execute())
}
