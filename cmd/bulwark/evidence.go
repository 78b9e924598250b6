package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/evidence"
	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// newEvidenceCmd is `bulwark evidence`.
func newEvidenceCmd() *cobra.Command {
	var in, out string
	cmd := &cobra.Command{
		Use:   "evidence --in results.json --out DIR",
		Short: "Write compliance evidence (OSCAL, JUnit, XLSX, HTML, JSON) from verify results",
		Long: `evidence reads the JSON that 'bulwark verify --format json' writes and
writes into DIR: results.json, assessment-results.json (OSCAL 1.1.2),
junit.xml, compliance-matrix.xlsx and report.html. Rows that are the
customer's responsibility are never marked pass.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEvidence(cmd.OutOrStdout(), in, out)
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "verify results `FILE` (JSON)")
	cmd.Flags().StringVar(&out, "out", "", "output `DIR` (created if missing)")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runEvidence(w io.Writer, in, out string) error {
	if in == "" || out == "" {
		return exitcode.UsageError(errors.New("evidence: both --in FILE and --out DIR are needed"))
	}
	r, err := readResults(in)
	if err != nil {
		return exitcode.UsageError(err)
	}
	cats, err := frameworks.Load()
	if err != nil {
		return err
	}
	m, err := evidence.Build(r, cats)
	if err != nil {
		// A finding naming an unknown row is in the input file: the caller's to fix.
		return exitcode.UsageError(fmt.Errorf("%s: %w", in, err))
	}
	paths, err := evidence.WriteBundle(out, r, cats)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(w, p)
	}
	fmt.Fprintln(w, m.Counts())
	return nil
}

// readResults decodes strictly: unknown fields, trailing data and unknown
// statuses are errors naming the file, so a truncated or hand-edited file
// never becomes evidence.
func readResults(path string) (provision.Results, error) {
	var r provision.Results
	data, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("evidence: read results: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("evidence: %s: not verify results JSON: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return r, fmt.Errorf("evidence: %s: trailing data after the results object", path)
	}
	for i, f := range r.Findings {
		switch f.Status {
		case provision.Pass, provision.Fail, provision.Warn, provision.NotApplicable:
		default:
			return r, fmt.Errorf("evidence: %s: findings[%d] (%s): status %q is not one of pass, fail, warn, not-applicable", path, i, f.ControlID, f.Status)
		}
		if f.ControlID == "" {
			return r, fmt.Errorf("evidence: %s: findings[%d]: control_id is empty", path, i)
		}
	}
	return r, nil
}
