//go:build linux

package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestCertUnitMakesP384Cert runs the first-boot unit's commands (the way
// systemd would, $$ unescaped, paths moved into a temp dir) and checks the
// result: an ECDSA P-384 certificate whose SAN is the hostname, and a key
// only its owner can read.
func TestCertUnitMakesP384Cert(t *testing.T) {
	testutil.RequireTools(t, "openssl", "hostname")
	dir := t.TempDir()
	for _, line := range strings.Split(certUnit, "\n") {
		cmd, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		cmd = strings.ReplaceAll(strings.ReplaceAll(cmd, CertDir, dir), "$$", "$")
		c := exec.Command("sh", "-c", "umask 0077; "+cmd)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	data, err := os.ReadFile(dir + "/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("cert.pem holds no PEM block")
	}
	crt, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if k, ok := crt.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("key is %T, want ECDSA P-384", crt.PublicKey)
	}
	if len(crt.DNSNames) != 1 || !strings.HasPrefix(crt.DNSNames[0], host) {
		t.Errorf("SAN %v, want the hostname %q", crt.DNSNames, host)
	}
	st, err := os.Stat(dir + "/key.pem")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v, mode %v; want 0600", err, st.Mode())
	}
}
