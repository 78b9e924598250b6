//go:generate packer-sdc mapstructure-to-hcl2 -type Config

package harden

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Defaults, exported so the docs and tests name the same values.
const (
	DefaultRemoteDir          = "/var/lib/bulwark-build"
	DefaultExecuteCommand     = "{{.Command}}"
	DefaultSudoCommand        = "sudo -n {{.Command}}"
	DefaultAuthorizedKeysFile = "/root/.ssh/authorized_keys"
)

// Config is the bulwark-harden provisioner's HCL block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Local path of the bulwark binary, built static for the guest's
	// architecture (CGO_ENABLED=0 GOOS=linux GOARCH=…).
	BulwarkBinary string `mapstructure:"bulwark_binary" required:"true"`
	// Local path of the transferd binary, built the same way. It is
	// uploaded next to bulwark, where the transfer control installs it from.
	TransferdBinary string `mapstructure:"transferd_binary" required:"true"`
	// Operator policy merged over the embedded defaults in the guest. Empty
	// means the defaults alone.
	PolicyFile string `mapstructure:"policy_file"`
	// Local directory the results (results.json) are downloaded into;
	// created if missing. The bulwark-evidence post-processor reads it.
	ResultsDir string `mapstructure:"results_dir" required:"true"`
	// Guest directory the binaries and policy are uploaded to. It must be
	// writable by the communicator's user. Defaults to /var/lib/bulwark-build.
	RemoteDir string `mapstructure:"remote_dir"`
	// How bulwark is run in the guest; {{.Command}} is the bulwark command
	// line. Defaults to "{{.Command}}", or "sudo -n {{.Command}}" with use_sudo.
	ExecuteCommand string `mapstructure:"execute_command"`
	// Run bulwark through sudo (for a non-root ssh_username).
	UseSudo bool `mapstructure:"use_sudo"`
	// Control IDs or family names to apply and verify; empty means every
	// control the policy enables.
	Only []string `mapstructure:"only_controls"`
	// Local path of the build's SSH public key. When set, its line is
	// removed from authorized_keys_file at the end, so the image does not
	// ship the key the build logged in with.
	RemoveBuildKey string `mapstructure:"remove_build_key"`
	// Guest authorized_keys file the build key is removed from. Defaults to
	// /root/.ssh/authorized_keys.
	AuthorizedKeysFile string `mapstructure:"authorized_keys_file"`

	ctx interpolate.Context
}

// prepare decodes raws into c, applies defaults and checks every field,
// returning all problems at once.
func (c *Config) prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "bulwark-harden",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{"execute_command"}},
	}, raws...)
	if err != nil {
		return fmt.Errorf("bulwark-harden: %w", err)
	}
	c.defaults()
	var errs *packersdk.MultiError
	for _, f := range []struct{ name, path string }{
		{"bulwark_binary", c.BulwarkBinary},
		{"transferd_binary", c.TransferdBinary},
		{"policy_file", c.PolicyFile},
		{"remove_build_key", c.RemoveBuildKey},
	} {
		if e := checkFile(f.name, f.path); e != nil {
			errs = packersdk.MultiErrorAppend(errs, e)
		}
	}
	errs = packersdk.MultiErrorAppend(errs, c.checkPaths()...)
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

func (c *Config) defaults() {
	if c.RemoteDir == "" {
		c.RemoteDir = DefaultRemoteDir
	}
	if c.AuthorizedKeysFile == "" {
		c.AuthorizedKeysFile = DefaultAuthorizedKeysFile
	}
	if c.ExecuteCommand == "" {
		c.ExecuteCommand = DefaultExecuteCommand
		if c.UseSudo {
			c.ExecuteCommand = DefaultSudoCommand
		}
	}
}

func (c *Config) checkPaths() []error {
	var errs []error
	if c.BulwarkBinary == "" {
		errs = append(errs, errors.New("bulwark_binary is required: the static bulwark binary for the guest"))
	}
	if c.TransferdBinary == "" {
		errs = append(errs, errors.New("transferd_binary is required: the static transferd binary for the guest"))
	}
	if c.ResultsDir == "" {
		errs = append(errs, errors.New("results_dir is required: where results.json is downloaded to"))
	}
	if !path.IsAbs(c.RemoteDir) || strings.ContainsAny(c.RemoteDir, " '\"`$\\;") {
		errs = append(errs, fmt.Errorf("remote_dir %q must be an absolute guest path without spaces or shell characters", c.RemoteDir))
	}
	if !path.IsAbs(c.AuthorizedKeysFile) {
		errs = append(errs, fmt.Errorf("authorized_keys_file %q must be an absolute guest path", c.AuthorizedKeysFile))
	}
	if !strings.Contains(c.ExecuteCommand, "{{.Command}}") {
		errs = append(errs, fmt.Errorf("execute_command %q must contain {{.Command}}", c.ExecuteCommand))
	}
	for _, o := range c.Only {
		if o == "" || strings.ContainsAny(o, " ,'\"`$\\;") {
			errs = append(errs, fmt.Errorf("only_controls: %q is not a control ID or family name", o))
		}
	}
	return errs
}

// checkFile reports a set-but-unreadable local file; empty is checked by
// the caller, since some of these are optional.
func checkFile(field, p string) error {
	if p == "" {
		return nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s: %s is a directory, want a file", field, p)
	}
	return nil
}
