// Command bulwark builds, hardens and proves a secure file-transfer
// appliance: it applies the policy's controls, verifies them, and turns the
// results into compliance evidence. Each subcommand lives in its own file;
// the work lives in the packages they call.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/version"
)

// Exit codes, the same for every subcommand.
const (
	exitOK      = 0
	exitFailed  = 1 // verify found failures, or the work itself failed
	exitBadArgs = 2 // bad flags, or a malformed policy: nothing was changed
)

// exitError carries an exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as the caller's mistake (exit 2).
func usageErr(err error) error { return &exitError{code: exitBadArgs, err: err} }

var root = &cobra.Command{
	Use:   "bulwark",
	Short: "Build, harden and prove a secure file-transfer appliance",
	Long: `bulwark hardens a file-transfer appliance from one policy and proves it.

Every hardening requirement is a control with Apply and Verify side by side,
mapped to the SOC 2 and SOX rows it serves. Typical use:

  bulwark controls                          # what is checked, and why
  bulwark apply --root /mnt/image           # harden an offline image
  bulwark verify --format json > results.json
  bulwark evidence --in results.json --out evidence/

The policy is embedded; --policy FILE merges your file over it.`,
	Version:       version.Version,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "bulwark:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own flag and argument errors are usage errors.
	if isCobraUsage(err) {
		return exitBadArgs
	}
	return exitFailed
}
