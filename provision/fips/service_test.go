//go:build linux

package fips

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestServiceReadsLinkedBinaryInsideRoot: transferd installed as an
// absolute link is read where the booted image would find it, inside the
// root, not at the link's text on the build machine (where it is absent).
func TestServiceReadsLinkedBinaryInsideRoot(t *testing.T) {
	testutil.RequireTools(t, "go")
	const installed = "/opt/bulwark-test/transferd"
	build := t.TempDir()
	buildProbe(t, build, "v1.0.0")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(installed)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(build, Binary), filepath.Join(root, installed)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(Binary)), 0o755); err != nil {
		t.Fatal(err)
	}
	checktest.Symlink(t, root, installed, Binary)
	c := &Service{base: base{serviceMeta}, Enabled: true}
	fs := c.Verify(context.Background(), checktest.NewHost(t, root))
	checktest.RequireBroken(t, checktest.Find(t, fs, "fips.service", "transferd build"), provision.Pass, "GOFIPS140=v1.0.0")
}
