package luks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Key delivery without cloud-init. The local deploy target (deploy/local)
// hands the instance its #cloud-config user data through QEMU's firmware
// config device instead of a seed disk, because a seed disk would be a file
// holding the key on the host for the VM's whole life. The blob stays
// readable to root in the guest for as long as that QEMU process runs, the
// same exposure as a cloud's instance metadata, so firstboot finds the key
// again on every boot, a reboot included, and nothing is written to the
// root disk.
const (
	// FwCfgUserData is where the guest kernel (module qemu_fw_cfg) exposes
	// the blob deploy/local passes as opt/bulwark/user-data.
	FwCfgUserData = "/sys/firmware/qemu_fw_cfg/by_name/opt/bulwark/user-data/raw"
	// ModulesLoadFile loads qemu_fw_cfg early (systemd-modules-load runs
	// before sysinit.target), so FwCfgUserData exists when the unit's
	// conditions are checked rather than whenever udev gets to the device.
	ModulesLoadFile = "/etc/modules-load.d/bulwark-fw-cfg.conf"
)

func renderModulesLoad() []byte {
	return []byte("# Written by bulwark (control luks.firstboot): the per-instance key may arrive over QEMU fw_cfg.\nqemu_fw_cfg\n")
}

// userData is the part of a #cloud-config document firstboot reads.
type userData struct {
	WriteFiles []struct {
		Path     string `yaml:"path"`
		Encoding string `yaml:"encoding"`
		Content  string `yaml:"content"`
	} `yaml:"write_files"`
}

// fetchKey writes the key file from the instance's user data when the
// platform has not written it itself: QEMU's fw_cfg blob (deploy/local),
// else, on EC2, the user data over IMDSv2 (imds.go). Neither platform is
// not an error: others write the key file directly, and open() says what
// is missing. Errors name where the user data came from.
func fetchKey(ctx context.Context, h host.Host, l policies.LUKS) error {
	if _, err := h.Stat(l.KeyFile); err == nil {
		return nil
	}
	doc, from, err := userDataDoc(ctx, h)
	if err != nil || doc == nil {
		return err
	}
	key, err := keyFromUserData(doc, l.KeyFile)
	if err != nil {
		return fmt.Errorf("firstboot: user data from %s: %w", from, err)
	}
	if err := h.WriteFile(l.KeyFile, key, 0o400); err != nil {
		return fmt.Errorf("firstboot: write delivered key %s: %w", l.KeyFile, err)
	}
	return nil
}

// imdsWait bounds how long firstboot waits for the metadata service (the
// network may still be coming up).
const imdsWait = 2 * time.Minute

// userDataDoc returns the user data and where it came from; nil when
// this platform hands none over.
func userDataDoc(ctx context.Context, h host.Host) ([]byte, string, error) {
	doc, err := h.ReadFile(FwCfgUserData)
	if err == nil {
		return doc, FwCfgUserData, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("firstboot: read user data %s: %w", FwCfgUserData, err)
	}
	ec2, _ := onEC2(h)
	if !ec2 {
		return nil, "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, imdsWait)
	defer cancel()
	doc, err = imdsFetch(ctx, &http.Client{Timeout: 5 * time.Second}, IMDSEndpoint)
	if errors.Is(err, errNoUserData) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("firstboot: %w", err)
	}
	return doc, "IMDSv2 " + IMDSEndpoint + imdsUserData, nil
}

// keyFromUserData returns the content of the write_files entry for
// keyFile, decoded.
func keyFromUserData(doc []byte, keyFile string) ([]byte, error) {
	var u userData
	if err := yaml.Unmarshal(doc, &u); err != nil {
		return nil, fmt.Errorf("not a #cloud-config document: %w", err)
	}
	for _, f := range u.WriteFiles {
		if f.Path != keyFile {
			continue
		}
		switch f.Encoding {
		case "":
			return []byte(f.Content), nil
		case "b64", "base64":
			key, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				return nil, fmt.Errorf("write_files %s: content is not base64: %w", keyFile, err)
			}
			return key, nil
		default:
			return nil, fmt.Errorf("write_files %s: encoding %q not supported (want b64 or none)", keyFile, f.Encoding)
		}
	}
	return nil, fmt.Errorf("no write_files entry for the key file %s (policy luks.key_file)", keyFile)
}
