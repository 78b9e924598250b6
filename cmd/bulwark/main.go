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

// run is main without the exit (exitcode.Run); each call builds a fresh
// command tree.
func run(args []string, stdout, stderr io.Writer) int {
	return exitcode.Run(newRootCmd(), args, stdout, stderr)
}
