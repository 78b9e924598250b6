package aws

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/deploy/internal/mocktest"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

// TestRunReadsStackConfig runs the real entry point with configuration the
// way the Pulumi CLI passes it (PULUMI_CONFIG), including the policy loader.
func TestRunReadsStackConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]string
		wantErr string
	}{
		{"complete", map[string]string{"bulwark:imagePath": "IMAGE", "bulwark:luksKey": testKey}, ""},
		{"no key", map[string]string{"bulwark:imagePath": "IMAGE"}, "missing bulwark:luksKey: policy luks.key_source is delivered"},
		{"tpm2 needs no key", map[string]string{"bulwark:imagePath": "IMAGE", "bulwark:policyFile": "TPM2"}, ""},
		{"tpm2 refuses a key it would not use", map[string]string{"bulwark:imagePath": "IMAGE", "bulwark:policyFile": "TPM2", "bulwark:luksKey": testKey}, "never uses it"},
		{"no image", map[string]string{"bulwark:luksKey": testKey}, "bulwark:imagePath"},
		{"bad retain", map[string]string{"bulwark:imagePath": "IMAGE", "bulwark:luksKey": testKey, "bulwark:backupRetainCount": "many"}, "backupRetainCount"},
		{"missing policy file", map[string]string{"bulwark:imagePath": "IMAGE", "bulwark:luksKey": testKey, "bulwark:policyFile": "/nonexistent/site.yaml"}, "bulwark:policyFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg["bulwark:imagePath"] == "IMAGE" {
				tt.cfg["bulwark:imagePath"] = image(t)
			}
			if tt.cfg["bulwark:policyFile"] == "TPM2" {
				tt.cfg["bulwark:policyFile"] = filepath.Join(t.TempDir(), "tpm2.yaml")
				if err := os.WriteFile(tt.cfg["bulwark:policyFile"], []byte("luks:\n  key_source: tpm2\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			js, _ := json.Marshal(tt.cfg)
			t.Setenv("PULUMI_CONFIG", string(js))
			m := &mocktest.Mocks{Computed: computed}
			err := mocktest.Run(m, Run)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to name %q", err, tt.wantErr)
				}
				if n := len(m.Resources()); n != 0 {
					t.Errorf("%d resources registered despite bad config", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pol := policiestest.Default(t)
			for name, err := range checkAll(pol, m.Resources()) {
				t.Errorf("invariant %s: %v", name, err)
			}
		})
	}
}
