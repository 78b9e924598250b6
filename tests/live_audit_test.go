//go:build linux

package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/provision/audit"
)

// The guest reaches the host's loopback as 10.0.2.2 under QEMU user
// networking; the SIEM certificate must name it (x509/name).
const siemHost = "10.0.2.2"

// TestLiveAudit applies the audit family in the shared guest with a policy
// forwarding to a TLS syslog receiver this test runs on the host, proves a
// line logged in the guest arrives over TLS, then breaks forwarding, the
// journal's storage and an audit watch, showing verify fail each time.
func TestLiveAudit(t *testing.T) {
	g := liveGuest(t)
	ca, srv := siemPKI(t)
	recv := startReceiver(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	policy := fmt.Sprintf("syslog:\n  target: %s:%d\n  protocol: tcp+tls\n  ca_file: /etc/bulwark/siem-ca.pem\n", siemHost, recv.port)
	for name, body := range map[string][]byte{"siem-ca.pem": ca, "audit-test.yaml": []byte(policy)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	guestRun(t, g, "mkdir -p /etc/bulwark")
	for _, name := range []string{"siem-ca.pem", "audit-test.yaml"} {
		if err := g.Upload(ctx, filepath.Join(dir, name), "/etc/bulwark/"+name); err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
	}
	withPolicy := "--policy /etc/bulwark/audit-test.yaml"
	// Leave the guest converged on the default policy (no SIEM target),
	// not forwarding to a receiver that is gone.
	t.Cleanup(func() { guestApply(t, g, "audit") })

	guestApply(t, g, "audit", withPolicy)
	if out := guestApply(t, g, "audit", withPolicy); bytes.Contains([]byte(out), []byte("write ")) || bytes.Contains([]byte(out), []byte("exec")) {
		t.Errorf("second apply changed something:\n%s", out)
	}
	requireVerify(t, g, "audit", 0, withPolicy)

	t.Run("a guest log line reaches the SIEM over TLS", func(t *testing.T) {
		b := make([]byte, 8)
		rand.Read(b)
		nonce := "bulwark-nonce-" + hex.EncodeToString(b)
		guestRun(t, g, "logger -t bulwarktest "+nonce)
		if !recv.waitFor(nonce, 3*time.Minute) {
			t.Fatalf("%s never arrived; received:\n%s", nonce, recv.text())
		}
	})
	t.Run("forwarding file removed", func(t *testing.T) {
		guestRun(t, g, "rm "+audit.ForwardFile)
		requireFailed(t, requireVerify(t, g, "audit", 1, withPolicy), "file "+audit.ForwardFile, "no such file")
		guestApply(t, g, "audit", withPolicy)
		requireVerify(t, g, "audit", 0, withPolicy)
	})
	t.Run("journal volatile", func(t *testing.T) {
		guestRun(t, g, "sed -i s/Storage=persistent/Storage=volatile/ "+audit.JournaldFile)
		requireFailed(t, requireVerify(t, g, "audit", 1, withPolicy), "Storage", "Storage=volatile")
		guestApply(t, g, "audit", withPolicy)
		requireVerify(t, g, "audit", 0, withPolicy)
	})
	t.Run("audit watch removed", func(t *testing.T) {
		guestRun(t, g, "sed -i '\\#-w /etc/shadow #d' "+audit.RulesFile+" "+audit.CompiledRules)
		requireFailed(t, requireVerify(t, g, "audit", 1, withPolicy), "compiled rules "+audit.CompiledRules, "-w /etc/shadow -p wa")
		guestApply(t, g, "audit", withPolicy)
		requireVerify(t, g, "audit", 0, withPolicy)
	})
}

// siemPKI makes a CA and a receiver certificate naming siemHost (as a DNS
// name, which rsyslog's x509/name checks, and as an IP).
func siemPKI(t *testing.T) (caPEM []byte, srv tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulwark test SIEM CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: siemHost},
		DNSNames: []string{siemHost}, IPAddresses: []net.IP{net.ParseIP(siemHost)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// receiver is a TLS syslog sink: it keeps every byte received, whatever
// the framing, so a test can look for its nonce.
type receiver struct {
	port int
	mu   sync.Mutex
	buf  bytes.Buffer
}

func startReceiver(t *testing.T, cert tls.Certificate) *receiver {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &receiver{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.read(c)
		}
	}()
	return r
}

func (r *receiver) read(c net.Conn) {
	defer c.Close()
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		r.mu.Lock()
		r.buf.Write(b[:n])
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (r *receiver) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *receiver) waitFor(s string, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(time.Second) {
		if bytes.Contains([]byte(r.text()), []byte(s)) {
			return true
		}
	}
	return false
}
