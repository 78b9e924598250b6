package baseline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

func TestSysctlRefusesBadPolicy(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"not a sysctl name", map[string]string{"rm -rf /": "1"}, `"rm -rf /"`},
		{"newline in value", map[string]string{"kernel.kptr_restrict": "2\nkernel.x = 1"}, "kernel.kptr_restrict"},
		{"empty value", map[string]string{"kernel.kptr_restrict": ""}, "kernel.kptr_restrict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			h, err := host.NewLocal(root)
			if err != nil {
				t.Fatal(err)
			}
			err = (&Sysctl{Values: tt.values}).Apply(context.Background(), h)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "baseline.sysctl: ") {
				t.Fatalf("Apply = %v; want a baseline.sysctl error naming %s", err, tt.want)
			}
			if len(h.Changes()) != 0 {
				t.Errorf("bad policy changed the host: %v", h.Changes())
			}
		})
	}
}

// TestEffectiveSysctl replays systemd-sysctl's precedence on a small tree.
func TestEffectiveSysctl(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"/usr/lib/sysctl.d/50-default.conf": "net.ipv4.conf.*.rp_filter = 2\nkernel.kptr_restrict = 1\n-fs.protected_fifos = 1\n",
		"/usr/lib/sysctl.d/60-bulwark.conf": "kernel.dmesg_restrict = 0\n", // hidden by /etc's copy
		"/etc/sysctl.d/60-bulwark.conf":     "kernel.kptr_restrict = 2\nkernel.dmesg_restrict = 1\nnet.ipv4.conf.all.rp_filter = 1\n",
		"/etc/sysctl.d/99-local.conf":       "# later file wins\nkernel/dmesg_restrict=0\nnet.ipv4.conf.*.rp_filter = 0\n",
	}
	for p, s := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := host.NewLocal(root)
	st, err := effectiveSysctl(h)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, value, file string }{
		{"kernel.kptr_restrict", "2", "/etc/sysctl.d/60-bulwark.conf"},
		{"kernel.dmesg_restrict", "0", "/etc/sysctl.d/99-local.conf"},
		{"net.ipv4.conf.all.rp_filter", "1", "/etc/sysctl.d/60-bulwark.conf"}, // explicit beats a later glob
		{"net.ipv4.conf.eth0.rp_filter", "0", "/etc/sysctl.d/99-local.conf"},
		{"fs.protected_fifos", "1", "/usr/lib/sysctl.d/50-default.conf"},
	}
	for _, tt := range tests {
		a, ok := st.lookup(tt.key)
		if !ok || a.value != tt.value || a.file != tt.file {
			t.Errorf("%s = %+v (found %v); want %s from %s", tt.key, a, ok, tt.value, tt.file)
		}
	}
}

func TestControlsFollowPolicy(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range Controls(p, provision.Instance) {
		ids = append(ids, c.Meta().ID)
		if len(c.Meta().Rows) == 0 || c.Meta().Title == "" {
			t.Errorf("%s has no rows or title", c.Meta().ID)
		}
	}
	if got := strings.Join(ids, " "); got != "baseline.sysctl baseline.coredumps baseline.tmp baseline.timesync baseline.listeners baseline.modules baseline.banner baseline.accounts baseline.permissions baseline.session baseline.pam baseline.usbguard" {
		t.Errorf("controls = %s", got)
	}
}

// TestLookupsStayInsideRoot: an offline image whose directories are
// absolute symlinks (/etc/sysctl.d -> /X) must be read as the image sees
// them, inside the root. A plain join would let the build machine's
// kernel follow the link to the machine's own /X, and Verify would judge
// the build machine instead of the image.
func TestLookupsStayInsideRoot(t *testing.T) {
	outside := t.TempDir() // plays the build machine's filesystem
	root := t.TempDir()
	put := func(base, p, s string) {
		t.Helper()
		full := filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	// Same names on both sides, different content.
	put(outside, "sysctl/99-x.conf", "kernel.kptr_restrict = 0\n")
	put(root, outside+"/sysctl/99-x.conf", "kernel.kptr_restrict = 2\n")
	symlink(outside+"/sysctl", filepath.Join(root, "etc/sysctl.d"))
	symlink("/machine", filepath.Join(outside, "units/timers.target.wants/a.timer"))
	symlink("/machine", filepath.Join(outside, "units/timers.target.wants/machine-only.timer"))
	symlink("/image", filepath.Join(root, outside, "units/timers.target.wants/a.timer"))
	symlink(outside+"/units", filepath.Join(root, "etc/systemd/system"))
	h, err := host.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}

	st, err := effectiveSysctl(h)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := st.lookup("kernel.kptr_restrict"); !ok || a.value != "2" {
		t.Errorf("kernel.kptr_restrict = %+v (found %v); want 2 from the image", a, ok)
	}
	tests := []struct {
		path     string
		exists   bool
		linkedTo string
	}{
		{"/etc/systemd/system/timers.target.wants/a.timer", true, "/image"},
		{"/etc/systemd/system/timers.target.wants/machine-only.timer", false, ""},
	}
	for _, tt := range tests {
		ok, err := exists(h, tt.path)
		if err != nil || ok != tt.exists {
			t.Errorf("exists(%s) = %v, %v; want %v", tt.path, ok, err, tt.exists)
		}
		got, _ := link(h, tt.path)
		if got != tt.linkedTo {
			t.Errorf("link(%s) = %q; want %q", tt.path, got, tt.linkedTo)
		}
	}
}
