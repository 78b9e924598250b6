package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/evidence"
	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

// errVerifyFailed is returned when verify ran and some finding failed; the
// report is already written, so the message only sums up.
var errVerifyFailed = errors.New("verify: some findings failed")

// newVerifyCmd is `bulwark verify`.
func newVerifyCmd(g *rootFlags) *cobra.Command {
	var rootDir, format, out string
	var only []string
	var o runner.VerifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove every enabled control holds, with evidence",
		Long: `verify runs every enabled control's Verify and reports each finding with
the evidence it read. Exit 1 when any finding fails.

Formats: text (a table and a summary line), json (the results that
"bulwark evidence" reads), junit (JUnit XML for CI).

Controls verify side by side (--jobs, default one per CPU): Verify only
reads, and the report is sorted the same whatever the order they finished
in. A control that drives a shared daemon (clamav.daemon's EICAR scan)
runs alone after the others.

--profile runs the controls one at a time and prints, on stderr, each
control's wall time and how many processes the system started while it
ran, slowest first: the next slow control shows without reading code.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd, g, rootDir, format, out, only, o)
		},
	}
	cmd.Flags().StringVar(&rootDir, "root", "/", "target root `DIR` (\"/\" is the live system)")
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: text, json or junit")
	cmd.Flags().StringVar(&out, "out", "", "write the report to `FILE` instead of stdout")
	cmd.Flags().IntVar(&o.Jobs, "jobs", 0, "verify at most `N` controls at once (0: one per CPU)")
	cmd.Flags().BoolVar(&o.Profile, "profile", false, "one control at a time; print each one's wall time and process starts to stderr")
	addOnly(cmd, &only)
	return cmd
}

func runVerify(cmd *cobra.Command, g *rootFlags, rootDir, format, out string, only []string, o runner.VerifyOptions) error {
	write, err := writer(format)
	if err != nil {
		return exitcode.UsageError(err)
	}
	if o.Jobs < 0 {
		return exitcode.UsageError(fmt.Errorf("--jobs %d: want 0 (one per CPU) or more", o.Jobs))
	}
	p, err := g.loadPolicy()
	if err != nil {
		return err
	}
	controls, err := runner.Select(all.Families(), g.controls(p), only)
	if err != nil {
		return exitcode.UsageError(err)
	}
	h, err := host.NewLocal(rootDir)
	if err != nil {
		return exitcode.UsageError(err)
	}
	res, timings := runner.VerifyWith(cmd.Context(), h, controls, policies.Hash(p), o)
	if o.Profile {
		if err := writeProfile(cmd.ErrOrStderr(), timings); err != nil {
			return err
		}
	}
	if err := emit(cmd.OutOrStdout(), out, res, write); err != nil {
		return err
	}
	if res.Failed() {
		return errVerifyFailed
	}
	return nil
}

func writer(format string) (func(io.Writer, provision.Results) error, error) {
	switch format {
	case "text":
		return writeText, nil
	case "json":
		return func(w io.Writer, r provision.Results) error { return writeJSON(w, r) }, nil
	case "junit":
		return evidence.WriteJUnit, nil
	}
	return nil, fmt.Errorf("--format %q: want text, json or junit", format)
}

func emit(stdout io.Writer, out string, res provision.Results, write func(io.Writer, provision.Results) error) error {
	if out == "" {
		return write(stdout, res)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("verify: --out: %w", err)
	}
	if err := write(f, res); err != nil {
		f.Close()
		return fmt.Errorf("verify: write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("verify: close %s: %w", out, err)
	}
	// The summary still goes to the terminal when the report goes to a file.
	_, err = fmt.Fprintln(stdout, summary(res))
	return err
}
