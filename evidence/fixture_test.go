package evidence

import (
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// testCatalogues are small hand-built catalogues with one row of each kind
// the status rules distinguish; the shipped catalogues are exercised by
// TestShippedCatalogues once frameworks.Load exists.
func testCatalogues() []*frameworks.Catalogue {
	return []*frameworks.Catalogue{
		{ID: "SOC2", Name: "SOC 2 Trust Services Criteria", Source: "seeds/soc2-mapping.txt", Rows: []frameworks.Row{
			{Ref: "CC1", Title: "Control Environment", Group: "Security (Common Criteria)", Responsibility: frameworks.Customer, Capability: "Customer responsibility."},
			{Ref: "CC2", Title: "Information and Communication", Group: "Security (Common Criteria)", Responsibility: frameworks.Shared, Capability: "Shared responsibility. Audit logging."},
			{Ref: "CC6", Title: "Logical and Physical Access Controls", Group: "Security (Common Criteria)", Responsibility: frameworks.Product, Capability: "Access controls."},
			{Ref: "CC7", Title: "System Operations", Group: "Security (Common Criteria)", Responsibility: frameworks.Product, Capability: "Monitoring."},
			{Ref: "PI1.1–PI1.5", Title: "Processing Integrity", Group: "Processing Integrity", Responsibility: frameworks.Product, Capability: "Checksums."},
		}},
		{ID: "SOX", Name: "SOX IT General Controls", Source: "seeds/sox-mapping.txt", Rows: []frameworks.Row{
			{Ref: "Network Security", Title: "Network Security", Group: "Logical Security", Responsibility: frameworks.Product, Capability: "Firewall."},
			{Ref: "Logging and Audit Trails", Title: "Logging and Audit Trails", Group: "System Operations", Responsibility: frameworks.Shared, Capability: "Logs <kept> & forwarded."},
			{Ref: "Encryption", Title: "Encryption", Group: "Logical Security", Responsibility: frameworks.Product, Capability: "FIPS."},
		}},
	}
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// testResults has every status, a customer row with passing checks, a
// shared row with a failure, and findings deliberately out of order.
func testResults() provision.Results {
	return provision.Results{
		Tool: "bulwark", Version: "0.1.0-test", Target: "/srv/rootfs",
		PolicyHash: "4f2a9c0e5b7d1e3f", Started: t0, Finished: t0.Add(3 * time.Second),
		Findings: []provision.Finding{
			{ControlID: "ssh.daemon", Title: "SSH daemon hardening", Rows: []string{"SOC2:CC6", "SOX:Network Security"},
				Property: "PermitRootLogin", Expected: "no", Actual: "no", Status: provision.Pass,
				Evidence: []provision.Evidence{{Source: "/etc/ssh/sshd_config.d/50-bulwark.conf", Read: "PermitRootLogin no"}}, Duration: 2 * time.Millisecond},
			{ControlID: "audit.journald", Title: "Persistent journal", Rows: []string{"SOC2:CC2", "SOX:Logging and Audit Trails"},
				Property: "Storage", Expected: "persistent", Actual: "volatile", Status: provision.Fail,
				Evidence: []provision.Evidence{{Source: "/etc/systemd/journald.conf", Read: "Storage=volatile"}}, Duration: time.Millisecond},
			{ControlID: "ssh.daemon", Title: "SSH daemon hardening", Rows: []string{"SOC2:CC6", "SOX:Network Security"},
				Property: "PasswordAuthentication", Expected: "no", Actual: "no", Status: provision.Pass,
				Evidence: []provision.Evidence{{Source: "/etc/ssh/sshd_config.d/50-bulwark.conf", Read: "PasswordAuthentication no"}}, Duration: 2 * time.Millisecond},
			{ControlID: "fips.mode", Title: "FIPS mode", Rows: []string{"SOX:Encryption", "SOC2:PI1.1–PI1.5"},
				Property: "fips_enabled", Expected: "1", Actual: "", Status: provision.NotApplicable,
				Reason: "offline rootfs: /proc/sys/crypto/fips_enabled exists only on a booted kernel", Duration: 0},
			{ControlID: "governance.banner", Title: "Login banner names the policy", Rows: []string{"SOC2:CC1"},
				Property: "/etc/issue.net", Expected: "banner present", Actual: "banner present", Status: provision.Pass,
				Evidence: []provision.Evidence{{Source: "/etc/issue.net", Read: "Authorised use only"}}, Duration: time.Millisecond},
			{ControlID: "updates.unattended", Title: "Unattended security upgrades", Rows: []string{"SOC2:CC6"},
				Property: "signature age", Expected: "< 2h", Actual: "3h", Status: provision.Warn,
				Reason: "mirror unreachable", Evidence: []provision.Evidence{{Source: "/var/lib/apt/periodic/update-success-stamp", Read: "mtime 2026-11-23T06:00:00Z"}}, Duration: time.Millisecond},
		},
	}
}

func mustBuild(t *testing.T) Matrix {
	t.Helper()
	m, err := Build(testResults(), testCatalogues())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return m
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), got)
}
