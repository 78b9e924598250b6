package main

import (
	"testing"

	goversion "github.com/hashicorp/go-version"

	"github.com/bulwark-appliance/bulwark/internal/version"
)

// Packer 1.11 installs a plugin under the version its describe command
// prints and accepts no prerelease but "-dev": a bad version makes
// `packer plugins install` or `packer init` refuse the plugin, so catch it
// here rather than in a template run.
func TestVersionIsPluginSemver(t *testing.T) {
	v, err := goversion.NewSemver(version.Version)
	if err != nil {
		t.Fatalf("internal/version.Version %q is not a semantic version: %v", version.Version, err)
	}
	if len(v.Segments()) != 3 {
		t.Errorf("version %q: want MAJOR.MINOR.PATCH", version.Version)
	}
	if pre := v.Prerelease(); pre != "" && pre != "dev" {
		t.Errorf("version %q: prerelease %q, Packer accepts only -dev", version.Version, pre)
	}
	if v.Metadata() != "" {
		t.Errorf("version %q: build metadata is not allowed in plugin versions", version.Version)
	}
}
