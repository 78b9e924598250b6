package luks

import (
	"strings"
	"testing"
)

// The documents are what deploy/appliance.CloudInit renders (write_files,
// b64) and the ways one can be wrong.
func TestKeyFromUserData(t *testing.T) {
	const keyFile = "/run/bulwark/luks.key"
	tests := []struct {
		name, doc, want, err string
	}{
		{name: "b64 entry among others", doc: "#cloud-config\nwrite_files:\n- path: /etc/bulwark/deploy.yaml\n  content: 'syslog: {}'\n- path: /run/bulwark/luks.key\n  owner: root:root\n  permissions: \"0400\"\n  encoding: b64\n  content: c2VjcmV0LWtleQ==\n", want: "secret-key"},
		{name: "plain content", doc: "write_files:\n- path: /run/bulwark/luks.key\n  content: plain\n", want: "plain"},
		{name: "no entry for the key", doc: "write_files:\n- path: /etc/other\n  content: x\n", err: "no write_files entry for the key file /run/bulwark/luks.key"},
		{name: "bad base64", doc: "write_files:\n- path: /run/bulwark/luks.key\n  encoding: b64\n  content: '%%%'\n", err: "content is not base64"},
		{name: "gzip not supported", doc: "write_files:\n- path: /run/bulwark/luks.key\n  encoding: gz+b64\n  content: eA==\n", err: `encoding "gz+b64" not supported`},
		{name: "not yaml", doc: "write_files: [\n", err: "not a #cloud-config document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyFromUserData([]byte(tt.doc), keyFile)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
