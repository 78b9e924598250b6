//go:generate packer-sdc mapstructure-to-hcl2 -type Config

package evidence

import (
	"errors"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the bulwark-evidence post-processor's HCL block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The verify report the bulwark-harden provisioner downloaded
	// (results_dir/results.json).
	ResultsFile string `mapstructure:"results_file" required:"true"`
	// The policy the image was hardened with (the provisioner's
	// policy_file); empty means the embedded defaults. Its hash goes into
	// the manifest and must match the one in the report.
	PolicyFile string `mapstructure:"policy_file"`
	// What the image was built from (a path, URL or cloud image name),
	// recorded in the manifest as given.
	BaseImage string `mapstructure:"base_image" required:"true"`
	// Where the bundle and manifest.json go. Defaults to "evidence" beside
	// the artifact's first file.
	OutputDir string `mapstructure:"output_dir"`

	ctx interpolate.Context
}

func (c *Config) prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "bulwark-evidence",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return fmt.Errorf("bulwark-evidence: %w", err)
	}
	var errs *packersdk.MultiError
	if c.ResultsFile == "" {
		errs = packersdk.MultiErrorAppend(errs, errors.New("results_file is required: the bulwark-harden provisioner's results_dir/results.json"))
	}
	if c.BaseImage == "" {
		errs = packersdk.MultiErrorAppend(errs, errors.New("base_image is required: what the image was built from, for the manifest"))
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
