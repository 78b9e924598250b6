package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

// writeApply prints one line per change, grouped by control, and a
// summary; a run that changed nothing says so. stopped is a run that
// ended on an error: its summary must not read as a converged system.
func writeApply(w io.Writer, rep runner.ApplyReport, dryRun, stopped bool) error {
	verb := "changed"
	if dryRun {
		verb = "would change"
	}
	n := 0
	for _, c := range rep.Controls {
		for _, ch := range c.Changes {
			n++
			if _, err := fmt.Fprintf(w, "%s: %s\n", c.ID, changeLine(ch)); err != nil {
				return err
			}
		}
	}
	var err error
	switch {
	case n == 0 && stopped:
		_, err = fmt.Fprintf(w, "nothing changed before apply stopped (%d controls reached)\n", len(rep.Controls))
	case n == 0:
		_, err = fmt.Fprintf(w, "no changes: %d controls already converged\n", len(rep.Controls))
	default:
		_, err = fmt.Fprintf(w, "%s %d %s in %d of %d controls\n", verb, n, plural(n, "thing", "things"), rep.Changed(), len(rep.Controls))
	}
	return err
}

// changeLine reads "write /etc/x (412 bytes, mode 0600)" or
// "exec: create group …".
func changeLine(c host.Change) string {
	if c.Path == "" {
		return c.String()
	}
	return c.Action + " " + c.Path + " (" + c.Detail + ")"
}

// writeText is the human table: one row per finding, then a summary line.
func writeText(w io.Writer, r provision.Results) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCONTROL\tPROPERTY\tEXPECTED\tACTUAL\tEVIDENCE")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(string(f.Status)), f.ControlID,
			f.Property, clip(f.Expected), clip(f.Actual), clip(evidenceLine(f)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Findings {
		if f.Status == provision.Fail {
			fmt.Fprintf(w, "FAIL %s %s: %s (%s)\n", f.ControlID, f.Property, f.Reason, evidenceLine(f))
		}
	}
	_, err := fmt.Fprintln(w, summary(r))
	return err
}

// Summary is the one-line verdict.
func summary(r provision.Results) string {
	count := map[provision.Status]int{}
	for _, f := range r.Findings {
		count[f.Status]++
	}
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s: %d findings: %d pass, %d fail, %d warn, %d not-applicable (target %s, policy sha256 %.12s)",
		verdict, len(r.Findings), count[provision.Pass], count[provision.Fail], count[provision.Warn],
		count[provision.NotApplicable], r.Target, r.PolicyHash)
}

func evidenceLine(f provision.Finding) string {
	var parts []string
	for _, e := range f.Evidence {
		parts = append(parts, e.Source+": "+e.Read)
	}
	return strings.Join(parts, "; ")
}

// clip keeps table cells on one line of reasonable width; JSON has it all.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// writeProfile prints a profiled run's timings, slowest first, with the
// total: the control to make faster next is the first line.
func writeProfile(w io.Writer, ts []runner.Timing) error {
	sorted := slices.Clone(ts)
	slices.SortStableFunc(sorted, func(a, b runner.Timing) int { return cmp.Compare(b.Wall, a.Wall) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "wall\tprocesses\tfindings\tcontrol")
	var total time.Duration
	procs, findings := 0, 0
	for _, t := range sorted {
		total += t.Wall
		findings += t.Findings
		p := "?"
		if t.Procs >= 0 {
			p = strconv.Itoa(t.Procs)
			procs += t.Procs
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", t.Wall.Round(time.Millisecond), p, t.Findings, t.ID)
	}
	fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", total.Round(time.Millisecond), procs, findings, "total (one at a time)")
	return tw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
