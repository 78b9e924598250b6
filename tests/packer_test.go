//go:build linux

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/internal/version"
)

// packerEnv is a Packer installation confined to a temp dir: the pinned
// ./bin/packer, the qemu plugin built from source and our plugin, both
// installed with `packer plugins install --path`, so nothing downloads.
type packerEnv struct {
	root   string // repository root
	packer string
	env    []string
	vars   []string // -var flags every template needs
}

func newPackerEnv(t *testing.T) *packerEnv {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(root, "bin")
	for _, tool := range []string{"packer", "packer-plugin-qemu"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			testutil.Skipf(t, "needs %s (make tools)", filepath.Join(bin, tool))
		}
	}
	testutil.RequireTools(t, "go", "ssh-keygen")
	tmp := t.TempDir()
	e := &packerEnv{root: root, packer: filepath.Join(bin, "packer"), env: append(os.Environ(),
		"PACKER_PLUGIN_PATH="+filepath.Join(tmp, "plugins"),
		"PACKER_CONFIG_DIR="+filepath.Join(tmp, "config"),
		"PACKER_CACHE_DIR="+filepath.Join(tmp, "cache"),
		"CHECKPOINT_DISABLE=1",
	)}
	// Built as a release (no -dev): `packer init` skips pre-release plugins
	// (Packer 1.11 command/init.go sets ReleasesOnly) and would then try to
	// download ours; validate and build accept -dev.
	plugin := filepath.Join(tmp, "packer-plugin-bulwark")
	e.run(t, "go", "build", "-ldflags", "-X github.com/bulwark-appliance/bulwark/internal/version.Version="+releaseVersion,
		"-o", plugin, "./cmd/packer-plugin-bulwark")
	e.timed(t, "plugin install", func() {
		e.run(t, e.packer, "plugins", "install", "--path", filepath.Join(bin, "packer-plugin-qemu"), "github.com/hashicorp/qemu")
		e.run(t, e.packer, "plugins", "install", "--path", plugin, "github.com/bulwark-appliance/bulwark")
	})
	key := filepath.Join(tmp, "id_ed25519")
	e.run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	// validate checks that the binaries exist, not what they are.
	for _, f := range []string{"bulwark", "transferd"} {
		if err := os.WriteFile(filepath.Join(tmp, f), []byte("placeholder"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.vars = []string{
		"-var", "ssh_private_key_file=" + key, "-var", "build_public_key=" + key + ".pub",
		"-var", "bulwark_binary=" + filepath.Join(tmp, "bulwark"), "-var", "transferd_binary=" + filepath.Join(tmp, "transferd"),
	}
	return e
}

func (e *packerEnv) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir, c.Env = e.root, e.env
	return c
}

func (e *packerEnv) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := e.cmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *packerEnv) timed(t *testing.T, what string, f func()) {
	start := time.Now()
	f()
	t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
}

// releaseVersion is internal/version.Version without its -dev suffix.
var releaseVersion = strings.TrimSuffix(version.Version, "-dev")

var templates = []struct {
	file string
	vars []string
}{
	{"images/debian-13.pkr.hcl", []string{"-var", "base_image=/var/cache/bulwark/base/debian-13.qcow2"}},
	// The qemu plugin fetches a file: checksum while validating, and
	// Canonical's SHA256SUMS is unreachable here.
	{"images/ubuntu-24.04.pkr.hcl", []string{"-var", "cloud_image_checksum=none"}},
}

// TestPackerValidate runs `packer init` (which must find both plugins
// installed, offline) and `packer validate -evaluate-datasources` on both
// templates, so the bulwark-policy data source really loads the policy;
// then shows that bad inputs fail. One plugin installation serves both.
func TestPackerValidate(t *testing.T) {
	e := newPackerEnv(t)
	t.Run("valid", func(t *testing.T) { validTemplates(t, e) })
	t.Run("rejects", func(t *testing.T) { rejectedInputs(t, e) })
}

func validTemplates(t *testing.T, e *packerEnv) {
	for _, tpl := range templates {
		t.Run(filepath.Base(tpl.file), func(t *testing.T) {
			e.timed(t, "init", func() { e.run(t, e.packer, "init", tpl.file) })
			args := append(append([]string{"validate", "-evaluate-datasources"}, e.vars...), tpl.vars...)
			e.timed(t, "validate", func() {
				if out := e.run(t, e.packer, append(args, tpl.file)...); !strings.Contains(out, "The configuration is valid") {
					t.Errorf("packer validate %s:\n%s", tpl.file, out)
				}
			})
		})
	}
}

// rejectedInputs shows validate is not a rubber stamp: each bad input
// fails and the message names what is wrong.
func rejectedInputs(t *testing.T, e *packerEnv) {
	badPolicy := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badPolicy, []byte("baseline:\n  disk_size_gib: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars []string
		want string
	}{
		{"format", []string{"-var", "format=vdi"}, "format must be qcow2 or raw"},
		{"accelerator", []string{"-var", "accelerator=fast"}, "accelerator must be one of"},
		{"missing binary", []string{"-var", "bulwark_binary=/nonexistent/bulwark"}, "bulwark_binary"},
		{"bad policy", []string{"-var", "policy_file=" + badPolicy}, badPolicy},
	}
	for _, tpl := range templates {
		for _, tt := range tests {
			t.Run(filepath.Base(tpl.file)+"/"+tt.name, func(t *testing.T) {
				args := append(append(append([]string{"validate", "-evaluate-datasources"}, e.vars...), tpl.vars...), tt.vars...)
				out, err := e.cmd(e.packer, append(args, tpl.file)...).CombinedOutput()
				if err == nil {
					t.Fatalf("packer validate accepted %v:\n%s", tt.vars, out)
				}
				if !strings.Contains(string(out), tt.want) {
					t.Errorf("packer validate output does not mention %q:\n%s", tt.want, out)
				}
			})
		}
	}
}

// TestBuildImageRejects shows scripts/build-image.sh (make image) refuses
// bad input before doing anything: exit 2, a message naming the variable,
// and nothing created under OUT.
func TestBuildImageRejects(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	tests := []struct {
		name string
		env  []string
		want string
	}{
		// FORMAT chose one format; every build now writes them all.
		{"format", []string{"FORMAT=vmdk"}, "FORMAT=vmdk: gone; every build writes qcow2, raw, vmdk, ova and vhd"},
		{"policy", []string{"POLICY=/nonexistent/policy.yaml"}, "POLICY=/nonexistent/policy.yaml: no such readable file"},
		{"operator key", []string{"OPERATOR_KEY=/nonexistent/key.pub"}, "OPERATOR_KEY=/nonexistent/key.pub"},
		{"resume step", []string{"FROM=deploy"}, "FROM=deploy: not a step"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			c := exec.Command("bash", "scripts/build-image.sh")
			c.Dir = root
			c.Env = append(append(os.Environ(), "OUT="+out), tt.env...)
			b, err := c.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("want exit 2, got %v:\n%s", err, b)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("output does not name %q:\n%s", tt.want, b)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s was created (err %v); bad input must change nothing", out, err)
			}
		})
	}
}

// TestUbuntuSeedInstallsTheBase: the Ubuntu template cannot be built here,
// so nothing else would notice its package list drifting from the Debian
// base every control expects: each base package is in the cloud-init seed
// (under its Ubuntu name), or explicitly provided by the cloud image.
func TestUbuntuSeedInstallsTheBase(t *testing.T) {
	b, err := os.ReadFile("../images/cloud-init/user-data.pkrtpl")
	if err != nil {
		t.Fatal(err)
	}
	seed := map[string]bool{}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case l == "packages:":
			in = true
		case in && strings.HasPrefix(l, "  - "):
			seed[strings.TrimPrefix(l, "  - ")] = true
		default:
			in = false
		}
	}
	ubuntu := map[string]string{
		"linux-image-amd64": "", // the cloud image boots its own kernel
		"systemd-sysv":      "", // part of every Ubuntu cloud image
		"nginx-light":       "nginx",
		"grub-efi-amd64":    "", // conflicts with the cloud image's grub-pc
		"systemd-repart":    "", // cloud-init's growpart grows the root
		// Ubuntu 24.04's systemd 255 ships systemd-cryptenroll and the TPM2
		// token plugin itself; Debian split them out in systemd 256.
		"systemd-cryptsetup": "",
	}
	for _, p := range base.Packages {
		name, mapped := ubuntu[p]
		if !mapped {
			name = p
		}
		if name != "" && !seed[name] {
			t.Errorf("base package %s: %q missing from the Ubuntu cloud-init seed's packages", p, name)
		}
	}
}

// TestUbuntuTemplateBootChain: the Ubuntu template cannot be built here,
// so this reads it: the build VM boots OVMF with Secure Boot enforced (q35
// with SMM, the secure pflash, Debian's ovmf files as the defaults), and
// neither the template nor its seed writes a boot entry or boots a kernel
// directly: the distro's hooks own the boot chain.
func TestUbuntuTemplateBootChain(t *testing.T) {
	tpl, err := os.ReadFile("../images/ubuntu-24.04.pkr.hcl")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile("../images/cloud-init/user-data.pkrtpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^\s*machine_type\s*=\s*"q35"$`,
		`(?m)^\s*efi_boot\s*=\s*true$`,
		`(?m)^\s*efi_firmware_code\s*=\s*var\.efi_firmware_code$`,
		`(?m)^\s*efi_firmware_vars\s*=\s*var\.efi_firmware_vars$`,
		`(?m)^\s*default\s*=\s*"/usr/share/OVMF/OVMF_CODE_4M\.secboot\.fd"$`,
		`(?m)^\s*default\s*=\s*"/usr/share/OVMF/OVMF_VARS_4M\.ms\.fd"$`,
		`\["-machine", local\.machine\]`,
		`"type=q35".*"smm=on"`,
		`\["-global", "driver=cfi\.pflash01,property=secure,value=on"\]`,
	} {
		if !regexp.MustCompile(want).Match(tpl) {
			t.Errorf("images/ubuntu-24.04.pkr.hcl: no match for %s", want)
		}
	}
	for name, b := range map[string][]byte{"template": tpl, "cloud-init seed": seed} {
		for _, banned := range []string{"efibootmgr", "grub-install", "bootctl", `"-kernel"`, `"-bios"`} {
			if strings.Contains(string(b), banned) {
				t.Errorf("%s uses %s: the distro's own hooks keep the image bootable, bulwark writes no boot entry", name, banned)
			}
		}
	}
}
