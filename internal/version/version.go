// Package version is bulwark's version, stamped at build time with
// -ldflags "-X github.com/bulwark-appliance/bulwark/internal/version.Version=…".
package version

// Version is the release version; "0.1.0-dev" for development builds. The
// Packer plugin reports it too, so it must stay a semantic version whose
// only prerelease is "-dev".
var Version = "0.1.0-dev"
