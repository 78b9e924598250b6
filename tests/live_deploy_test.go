//go:build linux

package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"

	"github.com/bulwark-appliance/bulwark/deploy/local"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/policies"
)

// TestLiveDeployLocal runs `bulwark deploy --target local` end to end with
// a file backend: up (health-checked), reachable, a policy change that
// previews as an update of exactly the changed network rule, then
// --destroy, after which no QEMU process, disk or stack state is left.
//
// With BULWARK_IMAGE (a `make image` qcow2) the health check is HTTPS on
// 443; without it the base disk is used and the check is the SSH banner on
// 22, because the base image has no HTTPS service.
func TestLiveDeployLocal(t *testing.T) {
	d, _ := liveDisk(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pulumiBin := filepath.Join(repo, "bin", "pulumi")
	if _, err := os.Stat(pulumiBin); err != nil {
		t.Fatalf("pulumi CLI: %v (make pulumi)", err)
	}
	bin := offBuildBulwark(t)
	state := t.TempDir()
	args := []string{"deploy", "--target", "local", "--state", state, "--pulumi", pulumiBin, "--memory", "1024"}
	machine := local.Config{Image: os.Getenv("BULWARK_IMAGE"), Health: "https"}
	if machine.Image == "" {
		machine = local.Config{Image: d.Path, Kernel: d.Kernel, Initrd: d.Initrd, Cmdline: d.Cmdline, Health: "ssh"}
		args = append(args, "--kernel", d.Kernel, "--initrd", d.Initrd, "--cmdline", d.Cmdline)
	}
	args = append(args, "--image", machine.Image, "--health", machine.Health)

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

	t.Run("admin CIDR change previews as an update of exactly that rule", func(t *testing.T) {
		previewPolicyChange(t, bin, state, pulumiBin, machine)
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

func reachable(t *testing.T, health string, ports map[int]int) {
	t.Helper()
	port := ports[22]
	if health == "https" {
		port = ports[443]
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatalf("appliance unreachable: %v", err)
	}
	defer c.Close()
	if health == "ssh" {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "SSH-") {
			t.Fatalf("no SSH banner from the deployed VM: %q %v", line, err)
		}
	}
}

// previewPolicyChange adds an admin network and previews through the
// Automation API: the only step that is not "same" must be an update of
// <name>-in-tcp-<admin_port>.
func previewPolicyChange(t *testing.T, bin, state, pulumiBin string, machine local.Config) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p.Network.WebAdminNetworks = append(p.Network.WebAdminNetworks, policies.Prefix{Prefix: netip.MustParsePrefix("203.0.113.0/24")})
	machine.MemoryMiB, machine.CPUs, machine.HealthPath, machine.BootTimeoutSeconds = 1024, 2, "/healthz", 900
	d := &local.Deploy{Stack: "local", StateDir: state, Policy: p, Machine: machine,
		ProviderCmd: []string{bin, "__deploy-provider"}, PulumiBin: pulumiBin}
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
