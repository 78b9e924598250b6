//go:build linux

package tests

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cryptossh "golang.org/x/crypto/ssh"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
	"github.com/bulwark-appliance/bulwark/deploy/local"
	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
	"github.com/bulwark-appliance/bulwark/provision/integrity"
	"github.com/bulwark-appliance/bulwark/provision/luks"
	sshctl "github.com/bulwark-appliance/bulwark/provision/ssh"
)

// The end-to-end test boots the image `make image` BUILT (not the base)
// and checks it from outside and inside. `make e2e` builds it and sets:
//
//	BULWARK_E2E_IMAGE  the built qcow2
//	BULWARK_E2E_BASE   the base.json `bulwark image base` wrote (the base's
//	                   own host key, which the image must not keep)
//	BULWARK_E2E_KEY    the operator's private key
//	BULWARK_E2E_EVIDENCE  the build's evidence directory: boot.json, what
//	                   the boots below observed, is written there
//
// Every boot is through firmware, as a hypervisor or cloud boots the
// disk: the qcow2 under OVMF with Secure Boot enforced, the VMDK under
// SeaBIOS, the VHD under OVMF without Secure Boot. No -kernel anywhere.
//
// How the test logs in: the build key is removed from the image and root
// may not log in (PermitRootLogin no), so the test cannot use either. The
// e2e build passes the template an operator key (operator_authorized_key):
// a separate account in the policy's admin group with non-interactive
// sudo, made before hardening, so the ssh control admits it by AllowGroups.
// Only test builds get it; `make image` without OPERATOR_KEY makes none.
const (
	e2eUser       = "bulwark-operator"
	e2eGuestBin   = guestBulwark // installed by bulwark-harden
	e2eGuestPol   = guestStaging + "/policy.yaml"
	rootAuthKeys  = "/root/.ssh/authorized_keys"
	e2eBootBudget = 15 * time.Minute
)

// e2ePorts are forwarded besides 22.
var e2ePorts = []int{80, 443, 8443}

type e2eInputs struct {
	image string
	disk  base.Disk // kernel, initrd, cmdline, host key of the base
	build base.Image
	key   qemu.BuildKey
}

func e2eSetup(t *testing.T) e2eInputs {
	t.Helper()
	testutil.Long(t)
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "qemu-system-x86_64", "qemu-img", "ip")
	var in e2eInputs
	in.image = os.Getenv("BULWARK_E2E_IMAGE")
	baseJSON, keyPath := os.Getenv("BULWARK_E2E_BASE"), os.Getenv("BULWARK_E2E_KEY")
	if in.image == "" || baseJSON == "" || keyPath == "" {
		testutil.Skipf(t, "no built image: run `make e2e` (sets BULWARK_E2E_IMAGE, BULWARK_E2E_BASE, BULWARK_E2E_KEY)")
	}
	data, err := os.ReadFile(baseJSON)
	if err != nil {
		t.Fatalf("BULWARK_E2E_BASE: %v", err)
	}
	if err := json.Unmarshal(data, &in.build); err != nil {
		t.Fatalf("BULWARK_E2E_BASE %s: %v", baseJSON, err)
	}
	in.disk = in.build.Disk
	if in.key, err = qemu.LoadOrCreateKey(keyPath); err != nil {
		t.Fatalf("BULWARK_E2E_KEY: %v", err)
	}
	if _, err := os.Stat(in.image); err != nil {
		t.Fatalf("BULWARK_E2E_IMAGE: %v", err)
	}
	return in
}

// TestE2E boots the built image the three ways platforms do, and a fourth
// time with a TPM its data volume is sealed to (e2eTPM2). The boots
// are independent, so they run as parallel subtests, and
// TestLiveDeployLocal (the same image) runs alongside them: `go test`
// runs at most GOMAXPROCS (2 here) at once, each a TCG guest on a core of
// its own; one after the other left a core idle for the whole stage.
func TestE2E(t *testing.T) {
	t.Parallel()
	in := e2eSetup(t)
	rec := newBootRecord(t, in.image)
	t.Run("qcow2 under "+string(qemu.SecureBoot), func(t *testing.T) {
		t.Parallel()
		e2eQcow2(t, in, rec)
	})
	t.Run("qcow2 sealed to the instance's TPM", func(t *testing.T) {
		t.Parallel()
		e2eTPM2(t, in)
	})
	// The other formats, from the same build, each through the firmware
	// the platforms that import it use.
	for _, f := range []struct {
		ext string
		fw  qemu.Firmware
	}{{".vmdk", qemu.BIOS}, {".vhd", qemu.UEFI}} {
		t.Run(strings.TrimPrefix(f.ext, ".")+" boots under "+string(f.fw), func(t *testing.T) {
			t.Parallel()
			disk := strings.TrimSuffix(in.image, ".qcow2") + f.ext
			start := time.Now()
			g := qemutest.Boot(t, qemu.Options{
				Disk: disk, Firmware: f.fw, ExtraDisks: []string{blankDisk(t, 1024)}, Forward: e2ePorts,
				User: e2eUser, Signer: in.key, HostKeyFromConsole: sshctl.HostKeyConsolePrefix, BootTimeout: e2eBootBudget,
			})
			rec.firmware(t, g, disk, f.fw, time.Since(start))
			if f.ext == ".vmdk" {
				// No key is delivered to this boot: it must fail closed.
				t.Run("no key delivered: the volume stays locked and /healthz says why", func(t *testing.T) {
					waitBootSettled(t, g, luks.UnitName)
					e2eWaitWeb(t, g.ForwardedPort(80), 5*time.Minute)
					e2eLocked(t, g, "not delivered")
				})
			}
		})
	}
}

// e2eQcow2 boots the qcow2 under OVMF with Secure Boot enforced, with the
// instance's key delivered, and probes it from outside and inside.
func e2eQcow2(t *testing.T, in e2eInputs, rec *bootRecord) {
	start := time.Now()
	// A second NIC on a tap bridge with an "internet" peer: through user
	// networking every client is 10.0.2.2 (the admin path the policy
	// admits), so only a peer with its own address shows what the
	// firewall of the built image lets the internet reach.
	n := newTapNet(t)
	g := qemutest.Boot(t, qemu.Options{
		Disk: in.image, Firmware: qemu.SecureBoot,
		ExtraDisks: []string{blankDisk(t, 1024)}, Forward: e2ePorts,
		// The instance's key, as deploy/local delivers it: the volume is
		// encrypted at this first boot and everything on it runs.
		FwCfg: []qemu.FwCfg{{Name: local.UserDataFwCfg, File: e2eKeyUserData(t)}},
		User:  e2eUser, Signer: in.key, HostKeyFromConsole: sshctl.HostKeyConsolePrefix, BootTimeout: e2eBootBudget,
		Tap: &qemu.Tap{Ifname: n.tap, MAC: tapMAC},
	})
	toSSH := time.Since(start)
	t.Logf("stage boot-to-SSH: %s", toSSH.Round(time.Second))
	t.Run("secure boot enforced", func(t *testing.T) { rec.firmware(t, g, in.image, qemu.SecureBoot, time.Since(start)) })
	// SSH is up before the web front: on first boot nginx waits for the
	// instance's own TLS pair (made then, never baked in) and for
	// network-online.target, which no longer waits for the tap NIC that
	// has no DHCP server (the image's wait-online runs with --any; before,
	// it held nginx back for its 2-minute timeout). Ready means nginx
	// answers.
	e2eWaitWeb(t, g.ForwardedPort(80), 5*time.Minute)
	t.Logf("stage boot-to-ready: %s (%s since SSH answered)", time.Since(start).Round(time.Second), (time.Since(start) - toSSH).Round(time.Second))
	n.attachTap(t)
	guestTapAddressAs(t, g, "sudo -n ")

	t.Run("outside", func(t *testing.T) { e2eOutside(t, g, in) })
	// After "outside": nginx has answered, so 80 and 443 must connect.
	t.Run("internet peer reaches only 80 and 443", func(t *testing.T) {
		e2eInternetPorts(t, n)
		if t.Failed() {
			t.Logf("guest sockets and addresses:\n%s", guestRun(t, g, "sudo -n ss -ltnp; ip -o addr; sudo -n nft list ruleset | head -80").Stdout)
		}
	})
	t.Run("build key gone", func(t *testing.T) { e2eBuildKeyGone(t, g, in) })
	t.Run("host key made by this instance", func(t *testing.T) { e2eOwnHostKey(t, g, in) })
	t.Run("verify passes", func(t *testing.T) {
		waitBootSettled(t, g, luks.UnitName)
		code, res := e2eVerify(t, g)
		if code != 0 || res.Failed() {
			t.Fatalf("verify in the built image: exit %d, failed: %v", code, failedIDs(res))
		}
		t.Logf("verify: %d findings, none failed", len(res.Findings))
		// One control at a time (the profile) must find what the
		// concurrent run found, on the real instance too.
		if _, seq := e2eVerify(t, g, "--profile"); findingsText(seq, false) != findingsText(res, false) {
			t.Errorf("verify one at a time differs from the concurrent run:\n%s", lineDiff(findingsText(seq, false), findingsText(res, false)))
		}
		// Not merely "not failed": the database's data was read back from
		// the running server and resolved to the dm-crypt mapping.
		if txt := findingText(res.Findings, "data_directory (running server)"); !strings.Contains(txt, "dm-crypt") {
			t.Errorf("database.encrypted on the instance: %q; want the data directory on a dm-crypt mapping", txt)
		} else {
			t.Logf("database.encrypted: %s", txt)
		}
	})
	// Before anything below edits a file: what first boot wrote for this
	// instance (host keys, TLS pair, crypttab…) is outside the baseline's
	// scope, so the image's own check finds nothing.
	t.Run("integrity check finds the instance as sealed", func(t *testing.T) { e2eIntegrityClean(t, g) })
	t.Run("broken control fails verify", func(t *testing.T) { e2eBreakSSH(t, g) })
	t.Run("initramfs holds the cloud drivers", func(t *testing.T) { rec.initrd(t, g) })
	t.Run("database started once, on the seeded volume", func(t *testing.T) { e2eDatabaseStartedOnce(t, g) })
	t.Run("no security update pending against the mirror", func(t *testing.T) { rec.patched(t, g) })
}

// e2eOutside probes the forwarded ports from the host: through QEMU user
// networking every client reaches the guest as 10.0.2.2, the admin path,
// so this proves the public ports answer as their services and SSH admits
// the operator there (Boot did); e2eInternetPorts proves from a peer with
// its own address on the tap bridge that nothing else is reachable.
func e2eOutside(t *testing.T, g *qemu.Guest, in e2eInputs) {
	t.Run("http answers", func(t *testing.T) {
		line := httpStatusLine(t, g.ForwardedPort(80))
		if !strings.HasPrefix(line, "HTTP/1.") {
			t.Fatalf("port 80: %q is not an HTTP status line", line)
		}
		t.Logf("port 80: %s", line)
	})
	if !hasFamily("tls") {
		// Not a skip: under CI=true a skip fails, and there is nothing to
		// probe until the tls family ships.
		t.Log("tls family not in provision/all: HTTPS, TLS and redirect probes not included")
		return
	}
	t.Run("https answers with TLS 1.2+ and this instance's own certificate", func(t *testing.T) { e2eTLS(t, g.ForwardedPort(443), in.image) })
	t.Run("http redirects to https", func(t *testing.T) { e2eRedirect(t, g.ForwardedPort(80)) })
}

// e2eKeyUserData is the #cloud-config user data that delivers a fresh
// per-instance key for the e2e policy's luks.key_file, as deploy/local
// hands it to QEMU's fw_cfg.
func e2eKeyUserData(t *testing.T) string {
	t.Helper()
	p, err := policies.Load("testdata/e2e-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 48)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	doc, err := appliance.CloudInit(p, base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// e2eDatabaseStartedOnce: on a keyed first boot the cluster starts once,
// after bulwark-firstboot has put its data on the volume. Ordered only
// after the volume's mount, it was started the moment the volume was
// mounted, failed on the still-empty data directory, and was started
// again by firstboot's ExecStartPost.
func e2eDatabaseStartedOnce(t *testing.T, g *qemu.Guest) {
	log := guestRun(t, g, "sudo -n journalctl -b -o cat --no-pager -u 'postgresql@*'").Stdout
	starts := strings.Count(log, "Starting postgresql@")
	if starts != 1 || strings.Contains(log, "Failed to start") {
		t.Fatalf("the cluster was started %d times this boot, want once:\n%s", starts, log)
	}
}

// e2eLocked: a boot with no key delivered, so the data volume must stay locked
// (fail closed): transferd down, and /healthz through nginx answering 503
// with the volume's state and the reason, as bulwark firstboot wrote them.
func e2eLocked(t *testing.T, g *qemu.Guest, reason string) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the instance's own certificate; the probe is about the answer
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", g.ForwardedPort(443)))
	if err != nil {
		t.Fatalf("GET /healthz on 443: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st luks.Status
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &st) != nil || st.State != "locked" || !strings.Contains(st.Reason, reason) {
		t.Fatalf("GET /healthz: %s %q; want 503 with the locked volume's state and a reason naming %q", resp.Status, body, reason)
	}
	t.Logf("/healthz while locked: %s %s", resp.Status, bytes.TrimSpace(body))
	if got := strings.TrimSpace(guestRun(t, g, "systemctl is-active transferd.service").Stdout); got == "active" {
		t.Errorf("transferd is active with no key delivered: its data would land on the root disk")
	}
	if got := strings.TrimSpace(guestRun(t, g, "systemctl is-active "+luks.UnitName).Stdout); got != "failed" {
		t.Errorf("%s is %q with no key delivered, want failed", luks.UnitName, got)
	}
	if out := strings.TrimSpace(guestRun(t, g, "systemctl list-units --state=active --no-legend 'postgresql@*'").Stdout); out != "" {
		t.Errorf("PostgreSQL is running with no key delivered (its data directory is on the volume): %s", out)
	}
	// An upload attempt through nginx, and writes as each service user,
	// leave nothing under the mount point on the root disk.
	up, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/api/messages", g.ForwardedPort(443)), "application/json", strings.NewReader(`{"subject":"leak"}`))
	if err != nil {
		t.Fatalf("POST /api/messages while locked: %v", err)
	}
	up.Body.Close()
	if up.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /api/messages while locked: %s, want 503", up.Status)
	}
	for _, user := range []string{"transferd", "postgres", "nobody"} {
		if r := guestRun(t, g, "sudo -n runuser -u "+user+" -- sh -c 'echo x > /srv/bulwark/leak'"); r.ExitCode == 0 {
			t.Errorf("user %s wrote under /srv/bulwark on the root disk while the volume is locked", user)
		}
	}
	if out := strings.TrimSpace(guestRun(t, g, "sudo -n ls -A /srv/bulwark").Stdout); out != "" {
		t.Errorf("the root disk's /srv/bulwark holds %q while locked; want it empty", out)
	}
}

func hasFamily(name string) bool {
	for _, f := range all.Families() {
		if f.Name == name {
			return true
		}
	}
	return false
}

// httpStatusLine reads the first response line: with user networking the
// host side of a forward accepts even when nothing listens in the guest,
// so only a reply proves a service.
func httpStatusLine(t *testing.T, port int) string {
	t.Helper()
	line, err := httpStatus(port, 60*time.Second)
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	return line
}

// httpStatus sends HEAD / and returns the reply's status line.
func httpStatus(port int, wait time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "HEAD / HTTP/1.1\r\nHost: bulwark\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no HTTP reply: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func e2eTLS(t *testing.T, port int, image string) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	// The appliance's certificate is its own until the operator installs
	// one; the probe is about the protocol, not the chain.
	c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}) //nolint:gosec // see above
	if err != nil {
		t.Fatalf("TLS handshake on 443: %v", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.Version < tls.VersionTLS12 {
		t.Fatalf("443 negotiated %s, want TLS 1.2 or newer", tls.VersionName(st.Version))
	}
	t.Logf("443: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	// The build VM's pair was deleted by `bulwark seal`: the certificate
	// served must have been made at this instance's first boot, after the
	// image was written (5 s of slack for the guest's clock; the build
	// makes its pair only ~30 s before the image file is final).
	built, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	cert := st.PeerCertificates[0]
	if cert.NotBefore.Before(built.ModTime().Add(-5 * time.Second)) {
		t.Errorf("443 serves a certificate made %s, before the image was written (%s): it was baked into the image",
			cert.NotBefore.UTC().Format(time.RFC3339), built.ModTime().UTC().Format(time.RFC3339))
	}
	t.Logf("443 certificate made %s, image written %s", cert.NotBefore.UTC().Format(time.RFC3339), built.ModTime().UTC().Format(time.RFC3339))
}

func e2eRedirect(t *testing.T, port int) {
	client := &http.Client{Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET on 80: %v", err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://") {
		t.Fatalf("GET on 80: %s Location %q, want a redirect to https://", resp.Status, loc)
	}
}

// e2eBuildKeyGone proves the build key cannot log in, and that its public
// half is not in root's authorized_keys (read as root through sudo).
func e2eBuildKeyGone(t *testing.T, g *qemu.Guest, in e2eInputs) {
	build, err := qemu.LoadOrCreateKey(in.build.BuildKey)
	if err != nil {
		t.Fatalf("build key: %v", err)
	}
	material := strings.Fields(build.Authorized)[1]
	r := guestRun(t, g, "sudo -n sh -c 'cat "+rootAuthKeys+" 2>/dev/null || true'")
	if r.ExitCode != 0 {
		t.Fatalf("read %s: exit %d: %s", rootAuthKeys, r.ExitCode, r.Stderr)
	}
	if strings.Contains(r.Stdout, material) {
		t.Fatalf("%s still holds the build key:\n%s", rootAuthKeys, r.Stdout)
	}
	for _, user := range []string{"root", e2eUser} {
		if err := sshLogin(g.ForwardedPort(22), user, build.Signer); err == nil {
			t.Fatalf("the build key still logs in as %s", user)
		} else if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("login as %s with the build key: want an authentication refusal, got %v", user, err)
		}
	}
}

// e2eOwnHostKey: the sealed image shipped no host key, so the one the
// guest printed on its console at first boot (and that Boot pinned) is
// new: not the base disk's, and the file sshd serves.
func e2eOwnHostKey(t *testing.T, g *qemu.Guest, in e2eInputs) {
	pinned := strings.Fields(g.HostKey())
	if len(pinned) < 2 {
		t.Fatalf("no host key pinned from the console: %q", g.HostKey())
	}
	if base := strings.Fields(in.disk.HostKey); len(base) > 1 && base[1] == pinned[1] {
		t.Fatalf("the instance serves the base disk's host key %s: the image was not sealed", pinned[1][:20])
	}
	r := guestRun(t, g, "cat /etc/ssh/ssh_host_ed25519_key.pub")
	if f := strings.Fields(r.Stdout); len(f) < 2 || f[1] != pinned[1] {
		t.Fatalf("/etc/ssh/ssh_host_ed25519_key.pub = %q, console said %q", r.Stdout, g.HostKey())
	}
}

func sshLogin(port int, user string, signer cryptossh.Signer) error {
	c, err := cryptossh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &cryptossh.ClientConfig{
		User: user, Auth: []cryptossh.AuthMethod{cryptossh.PublicKeys(signer)},
		// Loopback to our own guest; the host key is pinned by Boot.
		HostKeyCallback: cryptossh.InsecureIgnoreHostKey(), //nolint:gosec
		Timeout:         60 * time.Second,
	})
	if err == nil {
		c.Close()
	}
	return err
}

// e2eVerify runs the image's own bulwark verify as root, with the policy
// the build used when there was one.
func e2eVerify(t *testing.T, g *qemu.Guest, extra ...string) (int, provision.Results) {
	t.Helper()
	return e2eVerifyPolicy(t, g, e2eGuestPol, extra...)
}

// e2eVerifyPolicy is e2eVerify with the policy file pol, if it exists.
func e2eVerifyPolicy(t *testing.T, g *qemu.Guest, pol string, extra ...string) (int, provision.Results) {
	t.Helper()
	start := time.Now()
	cmd := "sudo -n sh -c 'p=; [ -f " + pol + " ] && p=\"--policy " + pol + "\"; exec " +
		e2eGuestBin + " verify --format json $p " + strings.Join(extra, " ") + "'"
	r := guestRun(t, g, cmd)
	t.Logf("stage verify %s: %s", strings.Join(extra, " "), time.Since(start).Round(time.Second))
	if slices.Contains(extra, "--profile") {
		t.Logf("verify --profile:\n%s", r.Stderr)
	}
	if r.ExitCode > 1 {
		t.Fatalf("verify: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	var res provision.Results
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("verify output is not JSON results: %v\n%s", err, r.Stdout)
	}
	return r.ExitCode, res
}

func failedIDs(r provision.Results) []string {
	var ids []string
	for _, f := range r.Findings {
		if f.Status == provision.Fail {
			ids = append(ids, f.ControlID+": "+f.Property+" = "+f.Actual)
		}
	}
	return ids
}

// e2eBreakSSH turns password logins on behind bulwark's back and shows
// verify fail naming ssh.daemon with the sshd -T evidence, then restores
// the control. The boot disk is a snapshot, so the image itself is never
// changed; restoring shows apply converges the broken image again.
func e2eIntegrityClean(t *testing.T, g *qemu.Guest) {
	start := time.Now()
	r := guestRun(t, g, "sudo -n systemctl start "+integrity.CheckUnit)
	if r.ExitCode != 0 {
		t.Fatalf("%s after first boot: exit %d; its report:\n%s", integrity.CheckUnit, r.ExitCode,
			guestRun(t, g, "sudo -n journalctl -u "+integrity.CheckUnit+" --no-pager -o cat | tail -80").Stdout)
	}
	t.Logf("aide --check against the sealed baseline: no difference (%s)", time.Since(start).Round(time.Second))

	// A program planted where bulwark's own live: the check fails, and so
	// does the control, until the operator accepts the files as they are.
	const planted = "/usr/local/bin/bulwark-planted"
	guestRun(t, g, "sudo -n install -m 0755 /usr/bin/true "+planted)
	if r := guestRun(t, g, "sudo -n systemctl start "+integrity.CheckUnit); r.ExitCode == 0 {
		t.Fatalf("%s passed with %s planted", integrity.CheckUnit, planted)
	}
	if report := guestRun(t, g, "sudo -n journalctl -u "+integrity.CheckUnit+" --no-pager -o cat").Stdout; !strings.Contains(report, planted) {
		t.Errorf("the check's report does not name %s:\n%s", planted, report)
	}
	code, res := e2eVerify(t, g, "--only", "integrity.files")
	if txt := findingText(res.Findings, "last check"); code != 1 || !strings.Contains(txt, "failed") {
		t.Errorf("verify after the planted program: exit %d, last check %q; want exit 1 and the failed check", code, txt)
	}
	guestRun(t, g, "sudo -n rm "+planted+" "+integrity.DBFile)
	if r := guestRun(t, g, "sudo -n "+e2eGuestBin+" apply --only integrity.files"); r.ExitCode != 0 {
		t.Fatalf("accept (new baseline): exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if code, res := e2eVerify(t, g, "--only", "integrity.files"); code != 0 {
		t.Fatalf("verify after the new baseline: exit %d, failed: %v", code, failedIDs(res))
	}
}

func e2eBreakSSH(t *testing.T, g *qemu.Guest) {
	r := guestRun(t, g, "sudo -n sed -i 's/^PasswordAuthentication .*/PasswordAuthentication yes/' "+sshctl.DropIn+
		" && sudo -n grep -q '^PasswordAuthentication yes' "+sshctl.DropIn)
	if r.ExitCode != 0 {
		t.Fatalf("break %s: exit %d: %s", sshctl.DropIn, r.ExitCode, r.Stderr)
	}
	code, res := e2eVerify(t, g)
	if code != 1 {
		t.Fatalf("verify after breaking sshd: exit %d, want 1", code)
	}
	found := false
	for _, f := range res.Findings {
		if f.ControlID == "ssh.daemon" && f.Status == provision.Fail && strings.Contains(strings.ToLower(f.Actual+f.Property), "password") {
			found = true
			t.Logf("verify fails as it should: %s %s = %q (evidence %v)", f.ControlID, f.Property, f.Actual, f.Evidence)
		}
	}
	if !found {
		t.Fatalf("verify did not name ssh.daemon's password setting; failed: %v", failedIDs(res))
	}
	if r := guestRun(t, g, "sudo -n "+e2eGuestBin+" apply --only ssh"); r.ExitCode != 0 {
		t.Fatalf("re-apply ssh: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if code, res := e2eVerify(t, g); code != 0 {
		t.Fatalf("verify after re-apply: exit %d, failed: %v", code, failedIDs(res))
	}
}

// e2eInternetPorts: from the internet peer, 80 and 443 connect to nginx,
// and SSH, the admin UI and PostgreSQL's port are dropped (time out, not
// refused: a refusal would mean the packet passed the firewall). SSH
// itself works on the admin path: qemutest.Boot logged in over it.
func e2eInternetPorts(t *testing.T, n tapNet) {
	for _, tc := range []struct {
		port int
		open bool
	}{{80, true}, {443, true}, {22, false}, {8443, false}, {5432, false}} {
		err := nsDial(n.internet, net.JoinHostPort(tapGuest, strconv.Itoa(tc.port)), 4*time.Second)
		switch {
		case tc.open && err != nil:
			t.Errorf("internet peer -> %s:%d: %v; want a connection", tapGuest, tc.port, err)
		case !tc.open && (err == nil || errors.Is(err, syscall.ECONNREFUSED)):
			t.Errorf("internet peer -> %s:%d: %v; want a drop (timeout)", tapGuest, tc.port, err)
		default:
			t.Logf("internet peer -> %s:%d: %v", tapGuest, tc.port, err)
		}
	}
}

// e2eWaitWeb polls port 80 until nginx sends an HTTP status line.
func e2eWaitWeb(t *testing.T, port int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		line, err := httpStatus(port, 10*time.Second)
		if err == nil && strings.HasPrefix(line, "HTTP/1.") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer on port 80 within %s: %q %v", limit, line, err)
		}
		time.Sleep(3 * time.Second)
	}
}
