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
	scratch, err := host.NewScratch(h, "nginx")
	if err != nil {
		return fmt.Errorf("tls.nginx: %w", err)
	}
	defer scratch.Close()
	cand := s
	if _, err := h.Stat(s.Cert); err != nil {
		cert, key, err := throwawayCert()
		if err == nil {
			err = writeAll(scratch, map[string][]byte{"cert.pem": cert, "key.pem": key})
		}
		if err != nil {
			return fmt.Errorf("tls.nginx: pre-flight: %w", err)
		}
		cand.Cert, cand.Key = scratch.Target("cert.pem"), scratch.Target("key.pem")
	}
	main, err := h.ReadFile(MainConfig)
	if err != nil {
		return fmt.Errorf("tls.nginx: pre-flight: read %s: %w", MainConfig, err)
	}
	if !strings.Contains(string(main), confInclude) {
		return fmt.Errorf("tls.nginx: %s does not contain %q, so %s would never be read; restore the include", MainConfig, confInclude, Config)
	}
	m := strings.Replace(string(main), confInclude, "include "+scratch.Target("bulwark.conf")+";", 1)
	m = strings.Replace(m, sitesInclude, "", 1)
	if err := writeAll(scratch, map[string][]byte{"bulwark.conf": cand.Render(), "nginx.conf": []byte(m)}); err != nil {
		return fmt.Errorf("tls.nginx: pre-flight: %w", err)
	}
	if out, err := h.Query(ctx, "nginx", "-t", "-q", "-c", scratch.Target("nginx.conf")); err != nil {
		return fmt.Errorf("tls.nginx: pre-flight `nginx -t` refused the new config, nothing written: %w (%s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func writeAll(s *host.Scratch, files map[string][]byte) error {
	for name, data := range files {
		if err := s.Write(name, data); err != nil {
			return err
		}
	}
	return nil
}

// throwawayCert makes a short-lived self-signed pair (PEM).
func throwawayCert() (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("throwaway key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulwark-preflight"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"bulwark-preflight"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, fmt.Errorf("throwaway certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("throwaway key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
