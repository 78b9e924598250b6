// Package luks encrypts the appliance's data volume (transfer files and the
// database) with LUKS2 on the instance's first boot, with a key only that
// instance holds. The image carries the machinery (a oneshot unit running
// `bulwark firstboot`) and never a key: a key baked into an image is one key
// for every instance ever launched from it.
//
// Key delivery (key_source keyfile): the platform writes the key to
// luks.key_file, on /run (tmpfs), on every boot — cloud-init bootcmd or a
// hypervisor secret. firstboot formats the device with it the first time,
// unlocks and mounts it every time, then deletes the key file so it is held
// by the kernel keyring only. Nothing persists it to the root disk; a second
// boot without redelivery leaves the volume locked and the services that
// live on it down (fail closed). tpm2 and prompt are accepted by the policy
// but not yet implemented by firstboot, which says so and stops.
//
// The postgres data directory is planned at <mount_point>/postgresql (the
// database family points data_directory there); firstboot creates it, and
// the transfer data dir, owned by their service users when they exist.
package luks

import (
	"github.com/goccy/go-yaml"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Family is the luks family for provision/all.
var Family = provision.Family{Name: "luks", Controls: Controls}

// Paths the family owns in the image.
const (
	UnitName = "bulwark-firstboot.service"
	UnitFile = "/etc/systemd/system/" + UnitName
	// PathName starts the service when the key file appears, for platforms
	// that deliver it after the boot transaction (a hypervisor secret, a
	// late cloud-init stage, an operator over SSH).
	PathName = "bulwark-firstboot.path"
	PathFile = "/etc/systemd/system/" + PathName
	// PolicyFile is the slice of the build-time policy firstboot needs; the
	// unit passes it with --policy, so the instance acts on exactly the
	// values the image was built and verified with.
	PolicyFile = "/etc/bulwark/firstboot.yaml"
	// Binary is where the image carries bulwark (the Packer provisioner
	// uploads it there).
	Binary = "/usr/local/sbin/bulwark"
	// MapperName is the dm-crypt mapping the volume is opened as.
	MapperName = "bulwark-data"
	MapperPath = "/dev/mapper/" + MapperName
)

var rows = []string{"SOC2:C1.2", "SOC2:C1.3", "SOX:Encryption at Rest"}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy) []provision.Control {
	return []provision.Control{
		&Firstboot{base: base{firstbootMeta}, LUKS: p.LUKS, DataDir: p.Transfer.DataDir},
		&Volume{base: base{volumeMeta}, LUKS: p.LUKS},
	}
}

// overlay is what PolicyFile holds: keys mirror policies.Policy so the
// loader reads it as an ordinary operator policy.
type overlay struct {
	LUKS     policies.LUKS `yaml:"luks"`
	Transfer struct {
		DataDir string `yaml:"data_dir"`
	} `yaml:"transfer"`
}

func renderPolicy(l policies.LUKS, dataDir string) ([]byte, error) {
	var o overlay
	o.LUKS, o.Transfer.DataDir = l, dataDir
	b, err := yaml.Marshal(o)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by bulwark (control luks.firstboot): the policy `bulwark firstboot` acts on.\n"), b...), nil
}

// renderUnit is the oneshot that runs on every boot. It orders itself
// before the services whose data lives on the volume, and after cloud-init,
// which delivers the key (or after modules-load, which exposes the fw_cfg
// user data deploy/local hands over). Without the key it is skipped (not
// failed), and the path unit starts it when the key arrives; until then the
// services on the volume cannot start, which is the intended fail-closed
// state. It is not ordered before transferd.socket: sockets start in
// sockets.target, before basic.target, which this unit (default
// dependencies) comes after, so that ordering was a cycle systemd broke by
// dropping the socket's start job at every boot. The socket may listen
// early; the service it starts waits for the volume (transfer.units'
// drop-in orders it after this unit and requires the mount).
func renderUnit(l policies.LUKS) []byte {
	return []byte(`# Written by bulwark (control luks.firstboot).
[Unit]
Description=bulwark first boot: encrypt, unlock and mount the data volume
After=local-fs.target cloud-init-local.service cloud-init.service
Before=postgresql.service transferd.service
ConditionPathExists=` + l.Device + `
# Either the platform wrote the key, or QEMU carries it in fw_cfg.
ConditionPathExists=|` + l.KeyFile + `
ConditionPathExists=|` + FwCfgUserData + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + Binary + ` --policy ` + PolicyFile + ` firstboot

[Install]
WantedBy=multi-user.target
`)
}

func renderPath(l policies.LUKS) []byte {
	return []byte(`# Written by bulwark (control luks.firstboot).
[Unit]
Description=bulwark first boot: start when the data volume key is delivered

[Path]
PathExists=` + l.KeyFile + `
Unit=` + UnitName + `

[Install]
WantedBy=paths.target
`)
}
