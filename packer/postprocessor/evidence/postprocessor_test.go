package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	bundle "github.com/bulwark-appliance/bulwark/evidence"
	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/updates"
)

// fixture is a built image and the report verify wrote for it.
type fixture struct {
	image, results, policy string
	imageBytes             []byte
}

func newFixture(t *testing.T, policyHash string, statuses ...provision.Status) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{image: filepath.Join(dir, "bulwark-debian-13.qcow2"), results: filepath.Join(dir, "results.json"),
		policy: filepath.Join(dir, "policy.yaml"), imageBytes: bytes.Repeat([]byte("QFI\xfb"), 4096)}
	if err := os.WriteFile(f.image, f.imageBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.policy, []byte("baseline:\n  disk_size_gib: 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if policyHash == "" {
		p, err := policies.Load(f.policy)
		if err != nil {
			t.Fatal(err)
		}
		policyHash = policies.Hash(p)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := provision.Results{Tool: "bulwark", Version: "0.1.0-dev", Target: "/", PolicyHash: policyHash, Started: at, Finished: at.Add(time.Second)}
	for _, s := range statuses {
		r.Findings = append(r.Findings, provision.Finding{ControlID: "ssh.daemon", Title: "SSH daemon hardening",
			Rows: []string{"SOC2:CC6", "SOX:Network Security"}, Property: "PermitRootLogin", Expected: "no", Actual: "no",
			Status: s, Evidence: []provision.Evidence{{Source: "/etc/ssh/sshd_config", Read: "PermitRootLogin no"}}})
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(f.results, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func configure(t *testing.T, raw map[string]interface{}) *PostProcessor {
	t.Helper()
	var p PostProcessor
	if err := p.Configure(raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return &p
}

func TestPostProcessWritesBundleAndManifest(t *testing.T) {
	f := newFixture(t, "", provision.Pass)
	now = func() time.Time { return time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC) }
	t.Cleanup(func() { now = func() time.Time { return time.Now().UTC() } })
	p := configure(t, map[string]interface{}{"results_file": f.results, "policy_file": f.policy, "base_image": "debian-13-base.qcow2"})
	in := &packersdk.MockArtifact{FilesValue: []string{f.image}}
	out, keep, force, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in)
	if err != nil {
		t.Fatalf("PostProcess: %v", err)
	}
	if !keep || force {
		t.Errorf("keep, force = %v, %v; the image must be kept", keep, force)
	}
	dir := filepath.Join(filepath.Dir(f.image), "evidence")
	for _, name := range []string{bundle.FileJSON, bundle.FileOSCAL, bundle.FileJUnit, bundle.FileXLSX, bundle.FileHTML, ManifestFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("bundle lacks %s: %v", name, err)
		}
	}
	if got := out.Files(); len(got) != 7 || got[0] != f.image {
		t.Errorf("artifact files = %v, want the image then 6 evidence files", got)
	}
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(f.imageBytes)
	want := ImageFile{Name: "bulwark-debian-13.qcow2", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(f.imageBytes))}
	if len(m.Images) != 1 || m.Images[0] != want {
		t.Errorf("manifest images = %+v, want [%+v]", m.Images, want)
	}
	pol, _ := policies.Load(f.policy)
	if m.PolicySHA256 != policies.Hash(pol) || m.BaseImage != "debian-13-base.qcow2" || m.BulwarkVersion != version.Version ||
		!m.BuildTime.Equal(now()) || m.Failed {
		t.Errorf("manifest = %+v", m)
	}
	if err := out.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.image); err != nil {
		t.Errorf("Destroy removed the image: %v", err)
	}
}

func TestPostProcessRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fixture)
		hash    string
		wantErr string
	}{
		{"results missing", func(f *fixture) { f.results = "/nonexistent/results.json" }, "", "results_file"},
		{"results not JSON", func(f *fixture) { os.WriteFile(f.results, []byte("<html>"), 0o644) }, "", "not a bulwark verify report"},
		{"no findings", func(f *fixture) { os.WriteFile(f.results, []byte(`{"findings":[]}`), 0o644) }, "", "no findings"},
		{"other policy", func(*fixture) {}, "0000", "verified under policy 0000"},
		{"bad policy", func(f *fixture) { os.WriteFile(f.policy, []byte("baseline:\n  disk_size_gib: lots\n"), 0o644) }, "x", "policy"},
		{"image missing", func(f *fixture) { os.Remove(f.image) }, "", "artifact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.hash, provision.Pass)
			tt.setup(&f)
			p := configure(t, map[string]interface{}{"results_file": f.results, "policy_file": f.policy, "base_image": "base"})
			_, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), &packersdk.MockArtifact{FilesValue: []string{f.image}})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f.image), "evidence")); !os.IsNotExist(err) {
				t.Errorf("bad input still wrote an evidence directory (stat: %v)", err)
			}
		})
	}
}

func TestConfigureReportsEveryError(t *testing.T) {
	var p PostProcessor
	err := p.Configure(map[string]interface{}{})
	if err == nil {
		t.Fatal("Configure accepted an empty block")
	}
	for _, w := range []string{"results_file is required", "base_image is required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q: %v", w, err)
		}
	}
}

// A failed verify still gets its evidence (auditors need the failures
// too) and the manifest says it failed.
func TestPostProcessRecordsFailure(t *testing.T) {
	f := newFixture(t, "", provision.Fail)
	p := configure(t, map[string]interface{}{"results_file": f.results, "policy_file": f.policy, "base_image": "base"})
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), &packersdk.MockArtifact{FilesValue: []string{f.image}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(f.image), "evidence", ManifestFile))
	if !strings.Contains(string(b), `"failed": true`) {
		t.Errorf("manifest does not record the failure:\n%s", b)
	}
}

func TestManifestPendingUpdates(t *testing.T) {
	finding := func(control, actual string) provision.Finding {
		return provision.Finding{ControlID: control, Property: updates.PendingProperty, Actual: actual}
	}
	tests := []struct {
		name     string
		findings []provision.Finding
		want     string // JSON of the field, "" when absent
	}{
		{"none pending", []provision.Finding{finding(updates.PatchedID, "0")}, "0"},
		{"three pending", []provision.Finding{finding(updates.PatchedID, "3")}, "3"},
		{"count unreadable: absent, not 0", []provision.Finding{finding(updates.PatchedID, "unreadable")}, ""},
		{"control did not run: absent", []provision.Finding{finding("ssh.daemon", "0")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newManifest(nil, "base", "hash", provision.Results{Findings: tt.findings})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if got := string(raw["security_updates_pending"]); got != tt.want {
				t.Errorf("security_updates_pending = %q, want %q", got, tt.want)
			}
		})
	}
}
