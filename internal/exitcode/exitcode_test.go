package exitcode

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
)

// newTree is a small real cobra tree with every kind of argument and flag
// the commands use, so the usage cases below are cobra's own errors.
func newTree(work error) *cobra.Command {
	root := &cobra.Command{Use: "prog", SilenceUsage: true, SilenceErrors: true}
	var n int
	run := &cobra.Command{Use: "run", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return work }}
	run.Flags().IntVarP(&n, "jobs", "j", 0, "")
	one := &cobra.Command{Use: "one FILE", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	most := &cobra.Command{Use: "most", Args: cobra.MaximumNArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	some := &cobra.Command{Use: "some", Args: cobra.MinimumNArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	var in string
	req := &cobra.Command{Use: "req", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	req.Flags().StringVar(&in, "in", "", "")
	_ = req.MarkFlagRequired("in")
	root.AddCommand(run, one, most, some, req)
	return root
}

func TestCode(t *testing.T) {
	einval := fmt.Errorf("mount /dev/vdb: %w", syscall.EINVAL) // "...: invalid argument"
	tests := []struct {
		name string
		args []string
		work error // what run's RunE returns
		want int
	}{
		{"success", []string{"run"}, nil, OK},
		{"work failed", []string{"run"}, errors.New("apply stopped at control ssh.daemon"), Failed},
		{"work failed with EINVAL", []string{"run"}, einval, Failed},
		{"usage error from the command", []string{"run"}, UsageError(errors.New("--format x: want text")), Usage},
		{"usage error wrapped again", []string{"run"}, fmt.Errorf("verify: %w", UsageError(errors.New("bad policy"))), Usage},
		{"explicit code", []string{"run"}, &Error{Code: 7, Err: errors.New("x")}, 7},
		{"unknown command", []string{"nosuch"}, nil, Usage},
		{"argument to a NoArgs command", []string{"run", "extra"}, nil, Usage},
		{"unknown flag", []string{"run", "--bogus"}, nil, Usage},
		{"unknown shorthand", []string{"run", "-z"}, nil, Usage},
		{"flag needs an argument", []string{"run", "--jobs"}, nil, Usage},
		{"invalid flag value", []string{"run", "--jobs", "many"}, nil, Usage},
		{"bad flag syntax", []string{"run", "---jobs"}, nil, Usage},
		{"exact args missing", []string{"one"}, nil, Usage},
		{"too many args", []string{"most", "a", "b"}, nil, Usage},
		{"too few args", []string{"some"}, nil, Usage},
		{"required flag missing", []string{"req"}, nil, Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newTree(tc.work)
			root.SetArgs(tc.args)
			err := root.Execute()
			if got := Code(err); got != tc.want {
				t.Errorf("prog %v: error %v: exit %d, want %d", tc.args, err, got, tc.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		err  error
		want int
		out  string
	}{
		{nil, OK, ""},
		{errors.New("verify: some findings failed"), Failed, "prog: verify: some findings failed\n"},
		{UsageError(errors.New("site.yaml:7:5: invalid CIDR")), Usage, "prog: site.yaml:7:5: invalid CIDR\n"},
		// The child printed its own error: only its code comes through.
		{ChildExit(3, errors.New("bulwark-deploy: exit status 3")), 3, ""},
		{fmt.Errorf("deploy: %w", ChildExit(Usage, errors.New("exit status 2"))), Usage, ""},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if got := Report(&b, "prog", tc.err); got != tc.want || b.String() != tc.out {
			t.Errorf("Report(%v) = %d, printed %q; want %d, %q", tc.err, got, b.String(), tc.want, tc.out)
		}
	}
	if UsageError(nil) != nil {
		t.Error("UsageError(nil) is not nil")
	}
	if ChildExit(OK, nil) != nil {
		t.Error("ChildExit(OK, nil) is not nil")
	}
}

// TestRun: the tree's name prefixes the error on stderr, the code follows
// the error, and stdout gets only what the command wrote.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		work error
		args []string
		code int
		err  string
	}{
		{"ok", nil, []string{"run"}, OK, ""},
		{"work failed", errors.New("disk full"), []string{"run"}, Failed, "prog: disk full\n"},
		{"bad flag", nil, []string{"run", "--nope"}, Usage, "prog: unknown flag: --nope\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(newTree(tc.work), tc.args, &stdout, &stderr); code != tc.code || stderr.String() != tc.err || stdout.Len() != 0 {
				t.Errorf("Run(%v) = %d, stderr %q, stdout %q; want %d, %q, nothing", tc.args, code, stderr.String(), stdout.String(), tc.code, tc.err)
			}
		})
	}
}
