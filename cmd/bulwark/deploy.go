//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// deployBinary does the work of `bulwark deploy`. It is its own binary so
// that bulwark does not link Pulumi: Go runs every linked package's init
// on each start, and Pulumi's added about 100 ms to every bulwark run (a
// second under TCG, where the appliance's verify runs).
const deployBinary = "bulwark-deploy"

// noDeployBinary is what `bulwark deploy` says when bulwark-deploy is absent.
const noDeployBinary = "bulwark deploy needs " + deployBinary + " next to bulwark or on PATH (make build installs it)"

// newDeployCmd is `bulwark deploy`: it runs bulwark-deploy with the same
// arguments, the persistent flags given before "deploy" (--policy)
// included, and exits with its code.
func newDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the appliance with Pulumi (local QEMU target; runs " + deployBinary + ")",
		Long: `Deploy the appliance with Pulumi: bulwark deploy runs ` + deployBinary + `, found
next to this bulwark or else on PATH, with the same arguments (--policy
included), and exits with its code. ` + deployBinary + ` is its own binary so that
bulwark does not link Pulumi; make build installs both.`,
		// Every argument goes to bulwark-deploy as given.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return deployHelp(cmd)
			}
			return runDeployBinary(cmd, args)
		},
	}
	// `bulwark help deploy`; a help that stops early (| head) is no error.
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) { _ = deployHelp(cmd) })
	return cmd
}

// wantsHelp reports whether args ask for help, as cobra would read them:
// -h or --help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

// deployHelp prints what bulwark deploy does, then bulwark-deploy's own
// help with every flag, or, without bulwark-deploy, that it is missing.
func deployHelp(cmd *cobra.Command) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s\n\nUsage:\n  bulwark deploy [flags]\n\n", cmd.Long)
	bin, err := findDeployBinary()
	if err != nil {
		fmt.Fprintf(out, "%v.\n", err)
		return nil
	}
	fmt.Fprintf(out, "The flags are %s's (%s --help):\n\n", deployBinary, bin)
	return runDeployBinary(cmd, []string{"--help"})
}

// runDeployBinary runs bulwark-deploy with args on the command's streams
// and this process's stdin, passes on the signals that would stop
// bulwark (so bulwark-deploy can end the Pulumi operation and bulwark
// returns only after it), and returns its exit code.
func runDeployBinary(cmd *cobra.Command, args []string) error {
	bin, err := findDeployBinary()
	if err != nil {
		return err
	}
	c := exec.Command(bin, args...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	if err := c.Start(); err != nil {
		return fmt.Errorf("deploy: run %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sig:
			_ = c.Process.Signal(s) // it may have exited already
		case err := <-done:
			return childExit(bin, err)
		}
	}
}

// childExit turns bulwark-deploy's end into bulwark's: its exit code,
// which it has explained on stderr itself, or for a death by signal the
// shell's 128+signal with a line that says so.
func childExit(bin string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("deploy: wait for %s: %w", bin, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &exitcode.Error{Code: 128 + int(ws.Signal()), Err: fmt.Errorf("deploy: %s: %w", bin, err)}
	}
	return exitcode.ChildExit(ee.ExitCode(), fmt.Errorf("deploy: %s: %w", bin, err))
}

// findDeployBinary is bulwark-deploy next to the running bulwark, else on
// PATH.
func findDeployBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		self = ""
	}
	return lookDeployBinary(self, exec.LookPath)
}

// lookDeployBinary is findDeployBinary with the executable's path and the
// PATH lookup given, for tests.
func lookDeployBinary(self string, lookPath func(string) (string, error)) (string, error) {
	if self != "" {
		sibling := filepath.Join(filepath.Dir(self), deployBinary)
		if isExecutable(sibling) {
			return sibling, nil
		}
	}
	if p, err := lookPath(deployBinary); err == nil {
		return p, nil
	}
	return "", errors.New(noDeployBinary)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
