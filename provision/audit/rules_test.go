//go:build linux

package audit

import (
	"strings"
	"testing"
)

// loadedRules is `auditctl -l` for bulwark's rules as auditctl 3.0 prints
// them: keys as -F key=, unset as -1, directories without the slash.
const loadedRules = `-w /etc/passwd -p wa -k bulwark-identity
-w /etc/shadow -p wa -k bulwark-identity
-w /etc/group -p wa -k bulwark-identity
-w /etc/gshadow -p wa -k bulwark-identity
-w /etc/sudoers -p wa -k bulwark-privilege
-w /etc/sudoers.d -p wa -k bulwark-privilege
-w /etc/ssh/sshd_config -p wa -k bulwark-sshd
-w /etc/ssh/sshd_config.d/ -p wa -k bulwark-sshd
-w /etc/bulwark -p wa -k bulwark-config
-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 -F auid!=-1 -F key=bulwark-admin
-a always,exit -F arch=b32 -S execve -F euid=0 -F auid>=1000 -F auid!=-1 -F key=bulwark-admin
`

func TestMissingLoadedRules(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"all loaded", loadedRules, nil},
		{"shadow watch gone", strings.Replace(loadedRules, "-w /etc/shadow -p wa -k bulwark-identity\n", "", 1),
			[]string{"-w /etc/shadow -p wa -k bulwark-identity"}},
		{"read-only watch is not a write watch", strings.Replace(loadedRules, "-w /etc/sudoers -p wa", "-w /etc/sudoers -p r", 1),
			[]string{"-w /etc/sudoers -p wa -k bulwark-privilege"}},
		{"32-bit execve not audited", strings.Replace(loadedRules, "arch=b32", "arch=b64", 1),
			[]string{rootExec("b32").line}},
		{"nothing loaded", "No rules\n", ruleLines()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := missing(tt.text, true)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("missing = %q; want %q", got, tt.want)
			}
		})
	}
}

func ruleLines() []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.line)
	}
	return out
}
