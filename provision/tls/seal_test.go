//go:build linux

package tls

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestSeal: the pair made in the build VM is deleted and the directory
// read back empty; a second seal changes nothing; an operator's given pair
// is never touched; a stray file left in the directory fails the seal.
func TestSeal(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, p := range []string{SelfKey, SelfCert} {
		checktest.Write(t, root, p, "material")
	}
	c := &Certificate{Cert: SelfCert, Key: SelfKey}
	h := checktest.NewHost(t, root)
	if err := c.Seal(ctx, h); err != nil {
		t.Fatal(err)
	}
	if len(h.Changes()) != 2 {
		t.Errorf("changes %v, want the key and the cert removed", h.Changes())
	}
	if left, _ := os.ReadDir(filepath.Join(root, CertDir)); len(left) != 0 {
		t.Errorf("left in %s: %v", CertDir, left)
	}
	again := checktest.NewHost(t, root)
	if err := c.Seal(ctx, again); err != nil || len(again.Changes()) != 0 {
		t.Errorf("second seal: %v, changes %v; want none", err, again.Changes())
	}

	given := &Certificate{Given: true, Cert: "/etc/ssl/site.pem", Key: "/etc/ssl/site.key"}
	checktest.Write(t, root, given.Key, "operator's key")
	if err := given.Seal(ctx, checktest.NewHost(t, root)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, given.Key)); err != nil {
		t.Errorf("seal removed the operator's given key: %v", err)
	}

	checktest.Write(t, root, CertDir+"/key.pem.new", "half-made key")
	err := c.Seal(ctx, checktest.NewHost(t, root))
	if err == nil || !strings.Contains(err.Error(), "key.pem.new") {
		t.Errorf("seal with a stray key file: %v, want an error naming it", err)
	}
}
