//go:build linux

package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Project is the Pulumi project of local deployments; stack config keys
// live in its namespace (bulwark-local:luksKey), apart from the provider's
// own "bulwark:" namespace.
const Project = "bulwark-local"

// Deploy describes one local deployment driven by the Automation API.
type Deploy struct {
	Name     string // appliance (resource) name; default "bulwark"
	Stack    string // default "local"
	StateDir string // file:// backend, passphrase file, plugin dir, VM dirs
	Policy   *policies.Policy
	Machine  Config
	// ProviderCmd is the command that serves the provider (e.g. the
	// bulwark-deploy binary and "__deploy-provider"); a PATH shim named
	// pulumi-resource-bulwark runs it.
	ProviderCmd []string
	// PulumiBin is the pulumi CLI; empty looks it up on PATH.
	PulumiBin string
}

// Open creates or selects the stack with its file backend and passphrase
// secrets provider, and sets a generated LUKS key as a secret config value
// unless one is already set (`pulumi config set --secret luksKey`).
func (d *Deploy) Open(ctx context.Context) (auto.Stack, error) {
	if err := d.defaults(); err != nil {
		return auto.Stack{}, err
	}
	env, err := d.env()
	if err != nil {
		return auto.Stack{}, err
	}
	wsOpts := []auto.LocalWorkspaceOption{
		auto.Project(workspace.Project{Name: tokens.PackageName(Project), Runtime: workspace.NewProjectRuntimeInfo("go", nil),
			Backend: &workspace.ProjectBackend{URL: "file://" + d.StateDir}}),
		auto.EnvVars(env), auto.SecretsProvider("passphrase"),
		// A persistent work dir: stack config (Pulumi.<stack>.yaml with the
		// secret key and the passphrase salt) lives there, not in the
		// backend; a temp dir would lose the key between runs.
		auto.WorkDir(d.workDir()),
	}
	if d.PulumiBin != "" {
		cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(filepath.Dir(d.PulumiBin)), SkipVersionCheck: true})
		if err != nil {
			return auto.Stack{}, fmt.Errorf("local: pulumi CLI %s: %w", d.PulumiBin, err)
		}
		wsOpts = append(wsOpts, auto.Pulumi(cmd))
	}
	st, err := auto.UpsertStackInlineSource(ctx, d.Stack, Project, d.program(), wsOpts...)
	if err != nil {
		return auto.Stack{}, fmt.Errorf("local: stack %s in %s: %w", d.Stack, d.StateDir, err)
	}
	if err := ensureKey(ctx, st); err != nil {
		return auto.Stack{}, err
	}
	return st, nil
}

func (d *Deploy) workDir() string { return filepath.Join(d.StateDir, "project") }

func (d *Deploy) defaults() error {
	if d.Name == "" {
		d.Name = "bulwark"
	}
	if d.Stack == "" {
		d.Stack = "local"
	}
	if d.Policy == nil {
		return errors.New("local: no policy")
	}
	if len(d.ProviderCmd) == 0 {
		return errors.New("local: no provider command")
	}
	abs, err := filepath.Abs(d.StateDir)
	if err != nil || d.StateDir == "" {
		return fmt.Errorf("local: state dir %q: %v", d.StateDir, err)
	}
	d.StateDir = abs
	if d.Machine.StateDir == "" {
		d.Machine.StateDir = filepath.Join(abs, "machines")
	}
	return os.MkdirAll(d.workDir(), 0o700)
}

// env gives the Pulumi CLI (and through it the engine) the passphrase, a
// private PULUMI_HOME and the plugin shim on PATH.
func (d *Deploy) env() (map[string]string, error) {
	pass, err := passphrase(d.StateDir)
	if err != nil {
		return nil, err
	}
	plugins := filepath.Join(d.StateDir, "plugins")
	if err := writeShim(plugins, d.ProviderCmd); err != nil {
		return nil, err
	}
	path := plugins + string(os.PathListSeparator) + os.Getenv("PATH")
	if d.PulumiBin != "" {
		path = filepath.Dir(d.PulumiBin) + string(os.PathListSeparator) + path
	}
	return map[string]string{
		"PULUMI_CONFIG_PASSPHRASE": pass,
		"PULUMI_HOME":              filepath.Join(d.StateDir, "home"),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		"PATH":                     path,
	}, nil
}

// passphrase is PULUMI_CONFIG_PASSPHRASE when set, else the content of
// <state>/passphrase, generated (mode 0600) on first use.
func passphrase(dir string) (string, error) {
	if p := os.Getenv("PULUMI_CONFIG_PASSPHRASE"); p != "" {
		return p, nil
	}
	file := filepath.Join(dir, "passphrase")
	data, err := os.ReadFile(file)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("local: passphrase: %w", err)
	}
	p := randomString(32)
	if err := os.WriteFile(file, []byte(p+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("local: passphrase: %w", err)
	}
	return p, nil
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeShim puts an executable pulumi-resource-bulwark in dir: the engine
// finds provider plugins on PATH ("ambient" plugins) when they are not
// installed in PULUMI_HOME.
func writeShim(dir string, cmd []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local: plugin dir: %w", err)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\nexec")
	for _, a := range cmd {
		b.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	b.WriteString(" \"$@\"\n")
	if err := os.WriteFile(filepath.Join(dir, PluginBinary), []byte(b.String()), 0o700); err != nil {
		return fmt.Errorf("local: plugin shim: %w", err)
	}
	return nil
}

func ensureKey(ctx context.Context, st auto.Stack) error {
	if _, err := st.GetConfig(ctx, Project+":luksKey"); err == nil {
		return nil
	}
	v := auto.ConfigValue{Value: randomString(48), Secret: true}
	if err := st.SetConfig(ctx, Project+":luksKey", v); err != nil {
		return fmt.Errorf("local: set luksKey: %w", err)
	}
	return nil
}

// program is the inline Pulumi program: the appliance component with the
// local target; it exports the machine's forwarded URLs.
func (d *Deploy) program() pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		// pulumi/config is not used: it needs spf13/cast, which go.mod
		// does not pin. Secret config arrives in plain text here and is
		// re-wrapped as a secret at once.
		raw, ok := ctx.GetConfig(Project + ":luksKey")
		if !ok {
			return fmt.Errorf("local: stack config %s:luksKey is not set", Project)
		}
		key := pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
		t := &Target{Config: d.Machine}
		app, err := appliance.NewAppliance(ctx, d.Name, &appliance.ApplianceArgs{Policy: d.Policy, Target: t, LUKSKey: key})
		if err != nil {
			return err
		}
		ctx.Export("url", t.Machine.URL)
		ctx.Export("adminUrl", t.Machine.AdminURL)
		ctx.Export("instanceId", app.InstanceID)
		ctx.Export("pid", t.Machine.Pid)
		ctx.Export("dir", t.Machine.Dir)
		ctx.Export("overlay", t.Machine.Overlay)
		ctx.Export("dataDisk", t.Machine.DataDisk)
		ctx.Export("hostPorts", t.Machine.HostPorts)
		return nil
	}
}

// Up deploys (or converges) the stack, streaming progress to out.
func (d *Deploy) Up(ctx context.Context, out io.Writer) (auto.UpResult, error) {
	st, err := d.Open(ctx)
	if err != nil {
		return auto.UpResult{}, err
	}
	res, err := st.Up(ctx, optup.ProgressStreams(out))
	if err != nil {
		return res, fmt.Errorf("local: up %s: %w", d.Stack, err)
	}
	return res, nil
}

// Preview shows the plan; events, when given, receives the engine events
// (what a test reads to see exactly which resources change).
func (d *Deploy) Preview(ctx context.Context, out io.Writer, evs chan<- events.EngineEvent) (auto.PreviewResult, error) {
	st, err := d.Open(ctx)
	if err != nil {
		return auto.PreviewResult{}, err
	}
	opts := []optpreview.Option{optpreview.ProgressStreams(out), optpreview.Diff()}
	if evs != nil {
		opts = append(opts, optpreview.EventStreams(evs))
	}
	res, err := st.Preview(ctx, opts...)
	if err != nil {
		return res, fmt.Errorf("local: preview %s: %w", d.Stack, err)
	}
	return res, nil
}

// Destroy deletes every resource (the provider stops QEMU and removes the
// disks) and then the stack itself from the backend.
func (d *Deploy) Destroy(ctx context.Context, out io.Writer) error {
	st, err := d.Open(ctx)
	if err != nil {
		return err
	}
	if _, err := st.Destroy(ctx, optdestroy.ProgressStreams(out)); err != nil {
		return fmt.Errorf("local: destroy %s: %w", d.Stack, err)
	}
	if err := st.Workspace().RemoveStack(ctx, st.Name()); err != nil {
		return fmt.Errorf("local: remove stack %s: %w", st.Name(), err)
	}
	return d.purge()
}

// purge removes what RemoveStack keeps: the file backend's .bak copies,
// history and backups of the stack, and its config file (with the key's
// ciphertext), so a destroyed stack leaves no state behind.
func (d *Deploy) purge() error {
	meta := filepath.Join(d.StateDir, ".pulumi")
	paths, err := filepath.Glob(filepath.Join(meta, "stacks", Project, d.Stack+".json*"))
	if err != nil {
		return fmt.Errorf("local: purge: %w", err)
	}
	paths = append(paths,
		filepath.Join(meta, "history", Project, d.Stack),
		filepath.Join(meta, "backups", Project, d.Stack),
		filepath.Join(d.workDir(), "Pulumi."+d.Stack+".yaml"))
	var errs []error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("local: purge %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
