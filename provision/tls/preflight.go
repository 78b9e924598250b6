//go:build linux

package tls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

const (
	confInclude  = "include /etc/nginx/conf.d/*.conf;"
	sitesInclude = "include /etc/nginx/sites-enabled/*;"
)

// preflight runs `nginx -t` on the target (chrooted offline) against a
// candidate: the real nginx.conf with our conf.d file swapped for the
// candidate and the sites (which Apply removes) left out. Before first boot
// the certificate does not exist yet, so the candidate points at a
// throwaway one made here and deleted with the scratch directory: nginx
// checks that the files load, and no real key ever touches the image.
func preflight(ctx context.Context, h host.Host, s Site) error {
	tmp := filepath.Join(h.Root(), "tmp")
	scratch, err := os.MkdirTemp(tmp, ".bulwark-nginx-")
	if err != nil {
		return fmt.Errorf("tls.nginx: pre-flight scratch dir in %s: %w", tmp, err)
	}
	defer os.RemoveAll(scratch)
	inTarget := path.Join("/tmp", filepath.Base(scratch))
	cand := s
	if _, err := h.Stat(s.Cert); err != nil {
		if err := throwawayCert(scratch); err != nil {
			return fmt.Errorf("tls.nginx: pre-flight: %w", err)
		}
		cand.Cert, cand.Key = inTarget+"/cert.pem", inTarget+"/key.pem"
	}
	main, err := h.ReadFile(MainConfig)
	if err != nil {
		return fmt.Errorf("tls.nginx: pre-flight: read %s: %w", MainConfig, err)
	}
	if !strings.Contains(string(main), confInclude) {
		return fmt.Errorf("tls.nginx: %s does not contain %q, so %s would never be read; restore the include", MainConfig, confInclude, Config)
	}
	m := strings.Replace(string(main), confInclude, "include "+inTarget+"/bulwark.conf;", 1)
	m = strings.Replace(m, sitesInclude, "", 1)
	if err := writeAll(scratch, map[string][]byte{"bulwark.conf": cand.Render(), "nginx.conf": []byte(m)}); err != nil {
		return fmt.Errorf("tls.nginx: pre-flight: %w", err)
	}
	if out, err := h.Query(ctx, "nginx", "-t", "-q", "-c", inTarget+"/nginx.conf"); err != nil {
		return fmt.Errorf("tls.nginx: pre-flight `nginx -t` refused the new config, nothing written: %w (%s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func writeAll(dir string, files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// throwawayCert writes a short-lived self-signed pair into dir.
func throwawayCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("throwaway key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulwark-preflight"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"bulwark-preflight"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("throwaway certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("throwaway key: %w", err)
	}
	return writeAll(dir, map[string][]byte{
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	})
}
