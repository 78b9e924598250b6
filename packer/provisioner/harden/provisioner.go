// Package harden is the bulwark-harden provisioner: it uploads bulwark,
// transferd and the policy into the guest, runs `bulwark apply` and then
// `bulwark verify`, downloads the results and fails the build when any
// control failed. Apply and verify run in the image being built, so the
// evidence describes the image that ships, not a host that resembles it.
package harden

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/bulwark-appliance/bulwark/provision"
)

// ResultsFile is the name of the verify report in the guest and in
// results_dir.
const ResultsFile = "results.json"

// InstalledBulwark is where the image keeps bulwark after the build: the
// units controls install (bulwark-firstboot, for one) run it from there,
// and an operator runs `bulwark verify` on the appliance with it.
const InstalledBulwark = "/usr/local/sbin/bulwark"

// Provisioner implements packersdk.Provisioner.
type Provisioner struct {
	config Config
}

// ConfigSpec is the HCL layout of Config.
func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Prepare decodes and checks the configuration, reporting every problem.
func (p *Provisioner) Prepare(raws ...interface{}) error { return p.config.prepare(raws...) }

// Provision runs the steps in order; the first failure stops the build and
// names its step.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, _ map[string]interface{}) error {
	g := &guest{cfg: &p.config, ui: ui, comm: comm}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"upload", g.upload},
		{"install", g.install},
		{"apply", g.apply},
		{"verify", g.verify},
		{"seal", g.seal},
		{"remove build key", g.removeBuildKey},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("bulwark-harden: %s: %w", s.name, err)
		}
	}
	return nil
}

// guest is one provisioning run against one communicator.
type guest struct {
	cfg  *Config
	ui   packersdk.Ui
	comm packersdk.Communicator
}

func (g *guest) remote(name string) string { return path.Join(g.cfg.RemoteDir, name) }

func (g *guest) upload(ctx context.Context) error {
	g.ui.Say(fmt.Sprintf("Uploading bulwark, transferd and the policy to %s", g.cfg.RemoteDir))
	if err := g.run(ctx, "mkdir -p "+shellQuote(g.cfg.RemoteDir), false); err != nil {
		return err
	}
	files := []struct{ local, remote string }{
		{g.cfg.BulwarkBinary, g.remote("bulwark")},
		{g.cfg.TransferdBinary, g.remote("transferd")},
	}
	if g.cfg.PolicyFile != "" {
		files = append(files, struct{ local, remote string }{g.cfg.PolicyFile, g.remote("policy.yaml")})
	}
	for _, f := range files {
		if err := uploadFile(g.comm, f.local, f.remote); err != nil {
			return err
		}
	}
	// scp does not carry the mode everywhere (SFTP, WinRM): set it.
	return g.run(ctx, "chmod 0755 "+shellQuote(g.remote("bulwark"))+" "+shellQuote(g.remote("transferd")), false)
}

func uploadFile(comm packersdk.Communicator, local, remote string) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("open %s: %w", local, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", local, err)
	}
	if err := comm.Upload(remote, f, &fi); err != nil {
		return fmt.Errorf("upload %s to %s: %w", local, remote, err)
	}
	return nil
}

// install puts bulwark where the image's units expect it, before apply,
// so controls that install a unit running it verify a binary that exists.
func (g *guest) install(ctx context.Context) error {
	g.ui.Say("Installing bulwark as " + InstalledBulwark)
	return g.run(ctx, "install -m 0755 "+shellQuote(g.remote("bulwark"))+" "+InstalledBulwark, true)
}

// bulwarkCmd is the bulwark command line for a subcommand, before
// execute_command wraps it.
func (g *guest) bulwarkCmd(sub string, extra ...string) string {
	// The build VM is the image, not an instance: instance-only checks
	// (the LUKS data volume, clamd with signatures) are not applicable here.
	args := []string{shellQuote(g.remote("bulwark")), "--image-build", sub}
	if g.cfg.PolicyFile != "" {
		args = append(args, "--policy", shellQuote(g.remote("policy.yaml")))
	}
	return strings.Join(append(args, extra...), " ")
}

// only is the --only flag for apply and verify, when only_controls is set.
func (g *guest) only() []string {
	if len(g.cfg.Only) == 0 {
		return nil
	}
	return []string{"--only", shellQuote(strings.Join(g.cfg.Only, ","))}
}

func (g *guest) apply(ctx context.Context) error {
	g.ui.Say("Applying bulwark controls in the guest")
	return g.run(ctx, g.bulwarkCmd("apply", g.only()...), true)
}

// seal removes the per-instance material apply made so the build VM could
// be verified live (the self-signed TLS pair): the image must not carry it.
func (g *guest) seal(ctx context.Context) error {
	g.ui.Say("Sealing: removing per-instance material from the image")
	return g.run(ctx, g.bulwarkCmd("seal"), true)
}

// verify runs bulwark verify, downloads its report even when controls
// failed (the report is the evidence of what failed), and then fails
// with the failed control IDs.
func (g *guest) verify(ctx context.Context) error {
	g.ui.Say("Verifying bulwark controls in the guest")
	out := g.remote(ResultsFile)
	status, err := g.exec(ctx, g.bulwarkCmd("verify", append(g.only(), "--format", "json", "--out", shellQuote(out))...), true)
	if err != nil {
		return err
	}
	if status != 0 && status != 1 { // 1 = some control failed; the report exists
		return fmt.Errorf("bulwark verify exited %d (usage error or crash; see the output above)", status)
	}
	res, err := g.download(out)
	if err != nil {
		return err
	}
	if failed := failedControls(res); len(failed) > 0 {
		return fmt.Errorf("%d control(s) failed: %s (report: %s)", len(failed), strings.Join(failed, ", "),
			filepath.Join(g.cfg.ResultsDir, ResultsFile))
	}
	if status != 0 {
		return fmt.Errorf("bulwark verify exited %d but its report lists no failed control", status)
	}
	g.ui.Say(fmt.Sprintf("All %d findings passed or are not applicable", len(res.Findings)))
	return nil
}

// download fetches the report into memory first, so a failed transfer
// leaves no empty results.json behind to be mistaken for evidence; a
// report that is not JSON is still saved for inspection.
func (g *guest) download(remote string) (provision.Results, error) {
	var res provision.Results
	var buf bytes.Buffer
	if err := g.comm.Download(remote, &buf); err != nil {
		return res, fmt.Errorf("download %s: %w", remote, err)
	}
	if err := os.MkdirAll(g.cfg.ResultsDir, 0o755); err != nil {
		return res, fmt.Errorf("results_dir: %w", err)
	}
	local := filepath.Join(g.cfg.ResultsDir, ResultsFile)
	if err := os.WriteFile(local, buf.Bytes(), 0o644); err != nil {
		return res, fmt.Errorf("results_dir: %w", err)
	}
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
		return res, fmt.Errorf("%s is not a bulwark verify report: %w", local, err)
	}
	g.ui.Say("Downloaded the verify report to " + local)
	return res, nil
}

// failedControls lists each failed control once, in report order.
func failedControls(r provision.Results) []string {
	var ids []string
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if f.Status == provision.Fail && !seen[f.ControlID] {
			seen[f.ControlID] = true
			ids = append(ids, f.ControlID)
		}
	}
	return ids
}

// run executes cmd and fails on a non-zero exit.
func (g *guest) run(ctx context.Context, cmd string, wrap bool) error {
	status, err := g.exec(ctx, cmd, wrap)
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("%q exited %d", cmd, status)
	}
	return nil
}

// exec runs cmd in the guest, wrapped in execute_command when wrap is
// set, streaming each output line to the UI as it arrives.
func (g *guest) exec(ctx context.Context, cmd string, wrap bool) (int, error) {
	if wrap {
		g.cfg.ctx.Data = struct{ Command string }{cmd}
		w, err := interpolate.Render(g.cfg.ExecuteCommand, &g.cfg.ctx)
		if err != nil {
			return 0, fmt.Errorf("execute_command: %w", err)
		}
		cmd = w
	}
	rc := &packersdk.RemoteCmd{Command: cmd}
	if err := rc.RunWithUi(ctx, g.comm, g.ui); err != nil {
		return 0, fmt.Errorf("run %q: %w", cmd, err)
	}
	return rc.ExitStatus(), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
