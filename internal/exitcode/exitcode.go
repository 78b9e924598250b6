// Package exitcode maps a command's error to its process exit code.
// bulwark, bulwark-deploy and transferd share it, so the codes the README
// documents hold for every binary: 0 ok, 1 the work failed (or verify
// found a failure), 2 bad arguments or a bad policy, and nothing was
// changed.
package exitcode

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// The exit codes.
const (
	OK     = 0
	Failed = 1 // the work failed, or verify found failures
	Usage  = 2 // bad flags or arguments, or a malformed policy: nothing was changed
)

// Error carries an exit code out of a command, wrapped or not.
type Error struct {
	Code int
	Err  error
	// Reported says the message was already printed (by a child process
	// whose exit status this is): Report returns the code and prints
	// nothing.
	Reported bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// UsageError marks err as the caller's mistake (exit Usage). It returns
// nil for nil, so it can wrap a call's result directly.
func UsageError(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: Usage, Err: err}
}

// ChildExit carries a child process's exit code out of a command that ran
// it in its place (bulwark deploy running bulwark-deploy): the child has
// already said what went wrong, so Report prints nothing. It returns nil
// for code 0.
func ChildExit(code int, err error) error {
	if code == OK {
		return nil
	}
	return &Error{Code: code, Err: err, Reported: true}
}

// cobraUsage are the starts of the messages cobra and pflag return for a
// mistake on the command line. They come back as plain errors, not types,
// so the message is all there is to go by; exitcode_test.go runs real
// cobra commands to pin each one, so a cobra upgrade that rewords them
// fails a test rather than turning exit 2 into exit 1. A prefix, not a
// substring: a failure deep in the work whose text merely contains
// "invalid argument" (EINVAL) is exit 1.
var cobraUsage = []string{
	"unknown command ",       // a subcommand that does not exist; cobra.NoArgs given an argument
	"unknown flag: ",         // --bogus
	"unknown shorthand flag", // -z
	"flag needs an argument", // --jobs with nothing after it
	"invalid argument ",      // --jobs x
	"bad flag syntax",        // ---x
	"accepts ",               // cobra.ExactArgs, MaximumNArgs, RangeArgs
	"requires at least ",     // cobra.MinimumNArgs
	"required flag(s) ",      // MarkFlagRequired
}

// Code is err's exit code: OK for nil, the code an *Error carries, Usage
// for cobra's own command-line errors, and Failed for anything else.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	msg := err.Error()
	for _, p := range cobraUsage {
		if strings.HasPrefix(msg, p) {
			return Usage
		}
	}
	return Failed
}

// Report prints a non-nil err as "prog: err" on w (unless a child process
// already reported it, see ChildExit) and returns err's exit code: what a
// command's main does with the error its tree returned.
func Report(w io.Writer, prog string, err error) int {
	var e *Error
	if err != nil && !(errors.As(err, &e) && e.Reported) {
		fmt.Fprintf(w, "%s: %v\n", prog, err)
	}
	return Code(err)
}

// Run executes a freshly built command tree on args with its output on
// stdout and stderr, and returns the exit code: main without the exit, so
// tests can run a CLI in-process any number of times, no flag value
// carrying over from one run to the next.
func Run(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return Report(stderr, root.Name(), root.Execute())
}
