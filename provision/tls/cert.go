//go:build linux

package tls

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var certMeta = provision.Meta{
	ID:    "tls.certificate",
	Title: "TLS certificate: given by policy, or made per instance at first boot (never baked into the image)",
	Rows:  []string{"SOC2:C1.2", "SOX:Encryption in Transit"},
}

// certUnit makes the per-instance pair at first boot. Cert last: the
// Condition is on the cert, so a boot interrupted after the key was made
// regenerates both. $$ is a literal $ for systemd.
const certUnit = `# Written by bulwark (control tls.certificate).
# A per-instance self-signed certificate, made once at first boot so no two
# appliances share a key and no key is ever in the image.
[Unit]
Description=bulwark per-instance TLS certificate (first boot)
ConditionPathExists=!` + SelfCert + `
Before=nginx.service
After=local-fs.target systemd-hostnamed.service

[Service]
Type=oneshot
UMask=0077
ExecStart=/bin/mkdir -p ` + CertDir + `
ExecStart=/bin/sh -c 'h=$$(hostname -f 2>/dev/null || hostname); exec /usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 825 -subj "/CN=$$h" -addext "subjectAltName=DNS:$$h" -keyout ` + SelfKey + `.new -out ` + SelfCert + `.new'
ExecStart=/bin/mv ` + SelfKey + `.new ` + SelfKey + `
ExecStart=/bin/mv ` + SelfCert + `.new ` + SelfCert + `

[Install]
WantedBy=nginx.service
`

// Certificate is the control tls.certificate.
type Certificate struct {
	Given     bool // the policy names a certificate (tls.certificate)
	Cert, Key string
}

func (*Certificate) Meta() provision.Meta { return certMeta }

// Apply installs the first-boot unit when no certificate is given. Live,
// it also runs it, so nginx has a certificate to load right away.
func (c *Certificate) Apply(ctx context.Context, h host.Host) error {
	if c.Given {
		if _, err := h.Stat(c.Cert); err != nil {
			return fmt.Errorf("tls.certificate: policy tls.certificate %s: %w", c.Cert, err)
		}
		if _, err := h.Stat(c.Key); err != nil {
			return fmt.Errorf("tls.certificate: policy tls.key %s: %w", c.Key, err)
		}
		return nil
	}
	if err := check.PreflightUnits(ctx, h, certMeta, check.UnitFile{Path: CertUnitFile, Data: []byte(certUnit)}); err != nil {
		return err
	}
	if err := h.WriteFile(CertUnitFile, []byte(certUnit), 0o644); err != nil {
		return fmt.Errorf("tls.certificate: write %s: %w", CertUnitFile, err)
	}
	if err := (check.Unit{Name: CertUnit, Target: "nginx.service"}).Enable(ctx, h); err != nil {
		return fmt.Errorf("tls.certificate: %w", err)
	}
	// Live, make the certificate now rather than at the next boot: nginx
	// needs it for the config the next control installs.
	if _, err := h.Stat(SelfCert); err != nil && h.Live() {
		if err := h.Exec(ctx, "make the per-instance certificate", "systemctl", "start", CertUnit); err != nil {
			return fmt.Errorf("tls.certificate: first-boot unit: %w", err)
		}
	}
	return nil
}

// Verify: a given certificate must load; otherwise the unit must be
// installed and enabled, and an offline image must hold no key or cert.
func (c *Certificate) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	switch {
	case c.Given || h.Live():
		out = append(out, certFinding(h, c.Cert), keyFinding(h, c.Key))
	}
	if !c.Given {
		out = append(out, check.File(certMeta, h, CertUnitFile, []byte(certUnit)),
			check.Unit{Name: CertUnit, Target: "nginx.service"}.Enabled(certMeta, h))
	}
	if !c.Given && !h.Live() {
		out = append(out, noBakedKey(h))
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

// noBakedKey fails when the image carries any file in the certificate
// directory: every appliance booted from it would share that key.
func noBakedKey(h host.Host) provision.Finding {
	f := certMeta.Finding("no key in the image "+CertDir, "empty or absent until first boot")
	entries, err := host.ReadDir(h, CertDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: CertDir, Read: err.Error()})
	}
	var names []string
	for _, e := range entries {
		names = append(names, CertDir+"/"+e.Name())
	}
	ev := provision.Evidence{Source: CertDir, Read: fmt.Sprintf("%d files: %s", len(names), strings.Join(names, " "))}
	if len(names) > 0 {
		return check.Fail(f, "key material baked in", "delete it from the image: each instance makes its own at first boot", ev)
	}
	return check.Pass(f, "empty", ev)
}

func certFinding(h host.Host, p string) provision.Finding {
	f := certMeta.Finding("certificate "+p, "a valid, unexpired certificate")
	data, err := h.ReadFile(p)
	if err != nil {
		return check.Fail(f, "missing", "nginx cannot start without it", provision.Evidence{Source: p, Read: err.Error()})
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return check.Fail(f, "not PEM", "replace it", provision.Evidence{Source: p, Read: "no PEM block"})
	}
	crt, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return check.Fail(f, "unparsable", err.Error(), provision.Evidence{Source: p, Read: err.Error()})
	}
	ev := provision.Evidence{Source: p, Read: fmt.Sprintf("subject %s, SAN %v, %s key, expires %s",
		crt.Subject, crt.DNSNames, crt.PublicKeyAlgorithm, crt.NotAfter.Format(time.RFC3339))}
	if time.Now().After(crt.NotAfter) {
		return check.Fail(f, "expired", "renew it", ev)
	}
	return check.Pass(f, "valid", ev)
}

func keyFinding(h host.Host, p string) provision.Finding {
	f := certMeta.Finding("private key "+p, "present, readable by root only (0600)")
	st, err := h.Stat(p)
	if err != nil {
		return check.Fail(f, "missing", "nginx cannot start without it", provision.Evidence{Source: p, Read: err.Error()})
	}
	ev := provision.Evidence{Source: p, Read: fmt.Sprintf("mode %04o", st.Mode().Perm())}
	if st.Mode().Perm()&0o077 != 0 {
		return check.Fail(f, ev.Read, "other accounts can read the key; chmod 0600", ev)
	}
	return check.Pass(f, ev.Read, ev)
}

// Seal runs last in the image build VM: the pair Apply made there so nginx
// could be checked live is deleted, and the directory is read back empty,
// so the image carries no key and each instance's first boot makes its own
// (the unit's Condition is on the certificate's absence).
func (c *Certificate) Seal(ctx context.Context, h host.Host) error {
	if c.Given {
		return nil // the operator's own pair, deliberately part of the image
	}
	for _, p := range []string{SelfKey, SelfCert} {
		if err := h.Remove(p); err != nil {
			return fmt.Errorf("tls.certificate: seal: remove %s: %w", p, err)
		}
	}
	if f := noBakedKey(h); f.Status != provision.Pass {
		return fmt.Errorf("tls.certificate: seal: %s still holds %s", CertDir, f.Evidence[0].Read)
	}
	return nil
}
