//go:build linux

// Command bulwark-deploy deploys the appliance with Pulumi: the local QEMU
// target through the Automation API, and the provider the engine starts
// for it. It is its own binary so that bulwark, which every verify starts
// inside the appliance, does not link Pulumi and run its package inits;
// `bulwark deploy` runs this binary with the same arguments.
package main

import (
	"context"
	"io"
	"os"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit: the provider when the engine starts it
// (through the pulumi-resource-bulwark shim), else the deploy command,
// whose tree is built fresh for each call.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == providerCommand {
		return exitcode.Report(stderr, "bulwark-deploy", serveProvider(context.Background(), args[1:]))
	}
	return exitcode.Run(newDeployCmd(), args, stdout, stderr)
}
