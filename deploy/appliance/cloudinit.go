package appliance

import (
	"encoding/base64"
	"fmt"
	"net"

	"github.com/goccy/go-yaml"

	"github.com/bulwark-appliance/bulwark/policies"
)

// DeployPolicyPath is where cloud-init drops the deploy-time policy overlay
// (today: the syslog target). It is an ordinary operator policy file, so
// `bulwark --policy /etc/bulwark/deploy.yaml` merges it over the defaults.
const DeployPolicyPath = "/etc/bulwark/deploy.yaml"

type cloudConfig struct {
	WriteFiles []writeFile `yaml:"write_files"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Encoding    string `yaml:"encoding,omitempty"`
	Content     string `yaml:"content"`
}

// overlay is the slice of the policy the deployment decides. Keys mirror
// policies.Policy so the loader accepts the file unchanged.
type overlay struct {
	Syslog policies.Syslog `yaml:"syslog"`
}

// CloudInit renders the #cloud-config user data: the LUKS key at the
// policy's luks.key_file (base64, root-only) and the syslog target as a
// policy overlay. The caller must treat the result as secret.
func CloudInit(p *policies.Policy, luksKey string) (string, error) {
	var files []writeFile
	if p.LUKS.KeySource == policies.KeySourceDelivered {
		if len(luksKey) < 32 {
			return "", fmt.Errorf("cloud-init: LUKS key is %d bytes, want at least 32 (generate one with: openssl rand -base64 48)", len(luksKey))
		}
		files = append(files, writeFile{
			Path: p.LUKS.KeyFile, Owner: "root:root", Permissions: "0400",
			Encoding: "b64", Content: base64.StdEncoding.EncodeToString([]byte(luksKey)),
		})
	}
	ov, err := yaml.Marshal(overlay{Syslog: p.Syslog})
	if err != nil {
		return "", fmt.Errorf("cloud-init: render %s: %w", DeployPolicyPath, err)
	}
	files = append(files, writeFile{Path: DeployPolicyPath, Owner: "root:root", Permissions: "0644", Content: string(ov)})
	doc, err := yaml.Marshal(cloudConfig{WriteFiles: files})
	if err != nil {
		return "", fmt.Errorf("cloud-init: render user data: %w", err)
	}
	return "#cloud-config\n" + string(doc), nil
}

// hostPort brackets IPv6 literals so URLs stay valid.
func hostPort(host string, port uint16) string {
	if port == 443 {
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}
