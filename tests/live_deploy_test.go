//go:build linux

package tests

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	cryptossh "golang.org/x/crypto/ssh"

	"github.com/bulwark-appliance/bulwark/deploy/local"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// TestLiveDeployLocal runs `bulwark deploy --target local` end to end with
// a file backend: up (health-checked), reachable, a policy change that
// previews as an update of exactly the changed network rule, then
// --destroy, after which no QEMU process, disk or stack state is left.
// bulwark runs the bulwark-deploy built beside it, as make build installs
// them, which also serves the provider.
//
// With BULWARK_IMAGE (a `make image` qcow2; `make e2e` sets it) the
// health check is transferd's /healthz over HTTPS on 443, through nginx;
// without it the base disk is used and the check is the SSH banner on 22,
// because the base image has no HTTPS service. Either boots through
// OVMF with Secure Boot enforced, into the image's own shim and GRUB.
//
// With BULWARK_E2E_KEY too (the e2e build's operator key) the test also
// looks inside: the data volume is LUKS2, unlocked from the key delivered
// over fw_cfg and mounted; the key file is gone; the key is nowhere in
// the Pulumi state in plain text; and after a reboot it unlocks again.
//
// It runs in parallel with TestE2E's boots in `make e2e` (see TestE2E).
func TestLiveDeployLocal(t *testing.T) {
	t.Parallel()
	testutil.Long(t)
	testutil.RequireRoot(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pulumiBin := filepath.Join(repo, "bin", "pulumi")
	if _, err := os.Stat(pulumiBin); err != nil {
		t.Fatalf("pulumi CLI: %v (make pulumi)", err)
	}
	bin := offBuildBulwark(t)
	deployBin := buildBeside(t, bin, "bulwark-deploy")
	state := t.TempDir()
	args := []string{"deploy", "--target", "local", "--state", state, "--pulumi", pulumiBin, "--memory", "1024"}
	machine := local.Config{Image: os.Getenv("BULWARK_IMAGE"), Health: "https", Firmware: string(qemu.SecureBoot)}
	if machine.Image == "" { // the base disk, built only when no image is given
		d, _ := liveDisk(t)
		machine.Image, machine.Health = d.Path, "ssh"
	}
	args = append(args, "--firmware", machine.Firmware, "--image", machine.Image, "--health", machine.Health)

	start := time.Now()
	out, code := runBulwark(t, bin, args...)
	up := time.Since(start)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	vm := deployedVM(t, out)
	t.Cleanup(func() { _ = vm.Stop(5 * time.Second) }) // only matters on failure
	t.Logf("deploy up in %s (health %s); outputs pid %d ports %v", up.Round(time.Second), machine.Health, vm.Pid, vm.Ports)
	if !vm.Running() {
		t.Fatalf("QEMU pid %d not running after deploy", vm.Pid)
	}
	reachable(t, machine.Health, vm.Ports)
	if keyPath := os.Getenv("BULWARK_E2E_KEY"); keyPath != "" && machine.Health == "https" {
		t.Run("data volume unlocked from the delivered key, on every boot", func(t *testing.T) {
			deployedVolume(t, keyPath, vm.Ports, state)
		})
	}

	t.Run("admin CIDR change previews as an update of exactly that rule", func(t *testing.T) {
		previewPolicyChange(t, deployBin, state, pulumiBin, machine)
	})

	start = time.Now()
	if out, code := runBulwark(t, bin, "deploy", "--destroy", "--state", state, "--pulumi", pulumiBin); code != 0 {
		t.Fatalf("deploy --destroy: exit %d\n%s", code, out)
	}
	t.Logf("destroy in %s", time.Since(start).Round(time.Second))
	if vm.Running() {
		t.Errorf("QEMU pid %d still running after --destroy", vm.Pid)
	}
	if _, err := os.Stat(filepath.Dir(vm.PidFile)); err == nil {
		t.Errorf("machine dir %s (overlay, data disk) left after --destroy", filepath.Dir(vm.PidFile))
	}
	left, _ := filepath.Glob(filepath.Join(state, ".pulumi", "*", local.Project, "local*"))
	if cfg := filepath.Join(state, "project", "Pulumi.local.yaml"); fileExists(cfg) {
		left = append(left, cfg)
	}
	if len(left) > 0 {
		t.Errorf("stack state left after --destroy: %v", left)
	}
}

// buildBeside builds ./cmd/<name> next to bin, where bulwark looks for
// its sibling binaries first, and returns its path.
func buildBeside(t *testing.T, bin, name string) string {
	t.Helper()
	out := filepath.Join(filepath.Dir(bin), name)
	cmd := exec.Command("go", "build", "-o", out, "github.com/bulwark-appliance/bulwark/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// deployedVM reads pid, dir and ports from the deploy output.
func deployedVM(t *testing.T, out string) qemu.Detached {
	t.Helper()
	vm := qemu.Detached{Ports: map[int]int{}}
	var dir string
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case !ok:
		case k == "pid":
			fmt.Sscan(v, &vm.Pid)
		case k == "dir":
			dir = v
		case k == "hostPorts":
			for _, kv := range strings.Fields(strings.Trim(v, "map[]")) {
				var g, h int
				if _, err := fmt.Sscanf(kv, "%d:%d", &g, &h); err == nil {
					vm.Ports[g] = h
				}
			}
		}
	}
	if vm.Pid == 0 || dir == "" || vm.Ports[22] == 0 {
		t.Fatalf("deploy output lacks pid/dir/hostPorts:\n%s", out)
	}
	vm.PidFile = filepath.Join(dir, "qemu.pid")
	for _, f := range []string{"boot.qcow2", "data.img"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("machine %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "user-data")); err == nil {
		t.Error("the secret user data file was left on disk after QEMU read it")
	}
	return vm
}

// reachable checks the appliance from outside: transferd's own health
// document through nginx on 443 (or the SSH banner for the base disk).
func reachable(t *testing.T, health string, ports map[int]int) {
	t.Helper()
	if health == "https" {
		h, err := local.FetchHealth(context.Background(), fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[443]))
		if err != nil {
			t.Fatalf("appliance health on 443: %v", err)
		}
		t.Logf("443 /healthz: transferd %s (database %s, clamd %s, disk %s)", h.Status, h.Database, h.Clamd, h.Disk)
		return
	}
	port := ports[22]
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatalf("appliance unreachable: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "SSH-") {
		t.Fatalf("no SSH banner from the deployed VM: %q %v", line, err)
	}
}

// previewPolicyChange adds an admin network and previews through the
// Automation API, with deployBin (bulwark-deploy) serving the provider:
// the only step that is not "same" must be an update of
// <name>-in-tcp-<admin_port>.
func previewPolicyChange(t *testing.T, deployBin, state, pulumiBin string, machine local.Config) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p.Network.WebAdminNetworks = append(p.Network.WebAdminNetworks, policies.Prefix{Prefix: netip.MustParsePrefix("203.0.113.0/24")})
	machine.MemoryMiB, machine.CPUs, machine.HealthPath, machine.BootTimeoutSeconds = 1024, 2, "/healthz", 900
	d := &local.Deploy{Stack: "local", StateDir: state, Policy: p, Machine: machine,
		ProviderCmd: []string{deployBin, "__deploy-provider"}, PulumiBin: pulumiBin}
	ch := make(chan events.EngineEvent, 4096)
	var log strings.Builder
	if _, err := d.Preview(context.Background(), &log, ch); err != nil {
		t.Fatalf("preview: %v\n%s", err, log.String())
	}
	var changed []string
	for len(ch) > 0 {
		e := <-ch
		if e.ResourcePreEvent == nil {
			continue
		}
		m := e.ResourcePreEvent.Metadata
		if m.Op != "same" {
			changed = append(changed, fmt.Sprintf("%s %s", m.Op, m.URN[strings.LastIndex(m.URN, "::")+2:]))
		}
	}
	want := fmt.Sprintf("update bulwark-in-tcp-%d", p.Network.AdminPort)
	if len(changed) != 1 || changed[0] != want {
		t.Fatalf("preview steps %q, want exactly [%s]\n%s", changed, want, log.String())
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// deployedVolume looks inside the deployed appliance as the e2e operator:
// the data volume is mounted from the LUKS2 mapping, the delivered key
// file is gone, and the key the guest received over fw_cfg appears in no
// file under the Pulumi state dir in plain text or base64. Then it reboots
// the guest and shows the volume unlocked again (the key is delivered on
// every boot, not once).
func deployedVolume(t *testing.T, keyPath string, ports map[int]int, state string) {
	op, err := qemu.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatalf("BULWARK_E2E_KEY: %v", err)
	}
	ssh := func(cmd string) (string, error) { return deploySSH(ports[22], op.Signer, cmd) }
	waitDeploySSH(t, ssh, 5*time.Minute)
	first := volumeState(t, ssh)
	key := deliveredKey(t, ssh)
	// Everything under the state dir but the VM's disks (a 20 GiB sparse
	// data image, LUKS ciphertext; the overlay of the boot disk): the file
	// backend, the stack config, PULUMI_HOME.
	if hits := grepTree(t, state, filepath.Join(state, "machines"), string(key), base64.StdEncoding.EncodeToString(key)); len(hits) > 0 {
		t.Errorf("the LUKS key is in plain text in the Pulumi state: %v", hits)
	}
	// The session dies with the guest; its error says nothing.
	_, _ = ssh("sudo -n systemctl reboot")
	start := time.Now()
	deadline := start.Add(15 * time.Minute)
	for {
		if _, err := local.FetchHealth(context.Background(), fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[443])); err == nil {
			if out, err := ssh("cat /proc/sys/kernel/random/boot_id"); err == nil && strings.TrimSpace(out) != first.bootID {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy again within 15m of the reboot")
		}
		time.Sleep(5 * time.Second)
	}
	t.Logf("stage reboot-to-healthy: %s", time.Since(start).Round(time.Second))
	volumeState(t, ssh)
}

type volume struct{ bootID string }

// volumeState checks the mount, the LUKS version, that the key file is
// gone and that transferd runs, logging what it read.
func volumeState(t *testing.T, ssh func(string) (string, error)) volume {
	t.Helper()
	out, err := ssh(`sudo -n sh -c 'cat /proc/sys/kernel/random/boot_id; findmnt -no SOURCE /srv/bulwark || echo not-mounted;
cryptsetup luksDump /dev/vdb | sed -n "s/^Version: *//p"; test -e /run/bulwark/luks.key && echo key-file-present || echo key-file-gone;
systemctl is-active transferd.service || true'`)
	if err != nil {
		t.Fatalf("look inside the deployed appliance: %v\n%s", err, out)
	}
	f := strings.Fields(out)
	want := []string{"", "/dev/mapper/bulwark-data", "2", "key-file-gone", "active"}
	if len(f) != len(want) {
		t.Fatalf("inside the appliance: %q, want boot id, %v", f, want[1:])
	}
	for i := 1; i < len(want); i++ {
		if f[i] != want[i] {
			t.Fatalf("inside the appliance (boot %s): %q, want boot id, %v", f[0], f[1:], want[1:])
		}
	}
	t.Logf("boot %s: /srv/bulwark from %s (LUKS%s), %s, transferd %s", f[0], f[1], f[2], f[3], f[4])
	return volume{bootID: f[0]}
}

// deliveredKey reads the key from the user data the guest got over fw_cfg.
func deliveredKey(t *testing.T, ssh func(string) (string, error)) []byte {
	t.Helper()
	doc, err := ssh("sudo -n cat " + luks.FwCfgUserData)
	if err != nil {
		t.Fatalf("read %s: %v", luks.FwCfgUserData, err)
	}
	var u struct {
		WriteFiles []struct{ Path, Content string } `yaml:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(doc), &u); err != nil {
		t.Fatalf("user data: %v", err)
	}
	for _, f := range u.WriteFiles {
		if f.Path == "/run/bulwark/luks.key" {
			key, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil || len(key) < 32 {
				t.Fatalf("user data key: %d bytes, %v", len(key), err)
			}
			return key
		}
	}
	t.Fatalf("user data has no key entry:\n%s", doc)
	return nil
}

// grepTree lists the files under dir, except under skip, holding any of
// needles.
func grepTree(t *testing.T, dir, skip string, needles ...string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		if !e.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if strings.Contains(string(data), n) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return hits
}

// deploySSH runs cmd as the e2e operator on the deployed VM's forwarded
// SSH port and returns its combined output.
// waitDeploySSH waits for a login. Healthy means the transfer service
// answers on 443; sshd is a separate unit that, on an instance's first
// boot, starts only after the instance has made its own host keys, so it
// may come up after the health check passed.
func waitDeploySSH(t *testing.T, ssh func(string) (string, error), limit time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		_, err := ssh("true")
		if err == nil {
			t.Logf("ssh into the deployed appliance after %s", time.Since(start).Round(time.Second))
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("no ssh into the deployed appliance within %s: %v", limit, err)
		}
		time.Sleep(5 * time.Second)
	}
}

func deploySSH(port int, signer cryptossh.Signer, cmd string) (string, error) {
	c, err := cryptossh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &cryptossh.ClientConfig{
		User: e2eUser, Auth: []cryptossh.AuthMethod{cryptossh.PublicKeys(signer)},
		// Loopback to the VM this test deployed a minute ago.
		HostKeyCallback: cryptossh.InsecureIgnoreHostKey(), //nolint:gosec
		Timeout:         60 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}
