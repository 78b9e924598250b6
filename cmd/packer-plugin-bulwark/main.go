// Command packer-plugin-bulwark is bulwark's Packer plugin: the
// bulwark-harden provisioner, the bulwark-evidence post-processor and the
// bulwark-policy data source. Install it with `make plugin`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	sdkversion "github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/packer/datasource/policy"
	"github.com/bulwark-appliance/bulwark/packer/postprocessor/evidence"
	"github.com/bulwark-appliance/bulwark/packer/provisioner/harden"
)

func main() {
	set := plugin.NewSet()
	set.RegisterProvisioner("harden", new(harden.Provisioner))
	set.RegisterPostProcessor("evidence", new(evidence.PostProcessor))
	set.RegisterDatasource("policy", new(policy.Datasource))
	// Packer 1.11 refuses a plugin whose describe output differs from the
	// version in its installed file name; NewRawVersion parses the same
	// string `packer plugins install` reads.
	set.SetVersion(sdkversion.NewRawVersion(version.Version))
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
