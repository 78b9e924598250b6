package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/bulwark-appliance/bulwark/policies"
)

func TestExecute(t *testing.T) {
	dir := t.TempDir()
	custom := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(custom, []byte("baseline:\n  disk_size_gib: 20\nnetwork:\n  admin_port: 9443\n  ssh_admin_networks: [192.0.2.0/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defaults, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     string
		disk     int64
		admin    int64
		sshFirst string
	}{
		{"embedded defaults", "", int64(defaults.Baseline.DiskSizeGiB), int64(defaults.Network.AdminPort), defaults.Network.SSHAdminNetworks[0].String()},
		{"operator file", custom, 20, 9443, "192.0.2.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Datasource
			if err := d.Configure(map[string]interface{}{"policy_file": tt.file}); err != nil {
				t.Fatal(err)
			}
			v, err := d.Execute()
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if got, _ := v.GetAttr("disk_size_gib").AsBigFloat().Int64(); got != tt.disk {
				t.Errorf("disk_size_gib = %d, want %d", got, tt.disk)
			}
			if got, _ := v.GetAttr("admin_port").AsBigFloat().Int64(); got != tt.admin {
				t.Errorf("admin_port = %d, want %d", got, tt.admin)
			}
			if got := v.GetAttr("ssh_admin_networks").Index(cty.NumberIntVal(0)).AsString(); got != tt.sshFirst {
				t.Errorf("ssh_admin_networks[0] = %q, want %q", got, tt.sshFirst)
			}
			if got := v.GetAttr("public_ports").LengthInt(); got != 2 {
				t.Errorf("public_ports has %d entries, want 80 and 443", got)
			}
			if got := v.GetAttr("policy_sha256").AsString(); len(got) != 64 {
				t.Errorf("policy_sha256 = %q, want a hex SHA-256", got)
			}
		})
	}
}

// The values must conform to OutputSpec, or Packer rejects them at build.
func TestOutputMatchesSpec(t *testing.T) {
	var d Datasource
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	out := Output(p)
	if out.PolicySHA256 != policies.Hash(p) {
		t.Errorf("policy_sha256 %q is not policies.Hash", out.PolicySHA256)
	}
	for name := range d.OutputSpec() {
		if name == "" {
			t.Error("empty attribute in OutputSpec")
		}
	}
	if _, ok := d.OutputSpec()["disk_size_gib"]; !ok {
		t.Error("OutputSpec lacks disk_size_gib")
	}
}

func TestExecuteRejectsBadPolicy(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("baseline:\n  disk_size_gib: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{bad, "/nonexistent/policy.yaml"} {
		var d Datasource
		if err := d.Configure(map[string]interface{}{"policy_file": file}); err != nil {
			t.Fatal(err)
		}
		_, err := d.Execute()
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Execute(%s) = %v, want an error naming the file", file, err)
		}
	}
}
