// Package luks encrypts the appliance's data volume (transfer files and the
// database) with LUKS2 on the instance's first boot, with a key only that
// instance holds. The image carries the machinery (a oneshot unit running
// `bulwark firstboot`) and never a key: a key baked into an image is one key
// for every instance ever launched from it.
//
// Key source delivered: the key comes in the instance's user data on every
// boot, which firstboot reads itself (QEMU fw_cfg, userdata.go; EC2 IMDSv2,
// imds.go) into luks.key_file on /run (tmpfs), or the platform writes
// that file.
// firstboot formats the device with it the first time, unlocks and mounts
// it every time, then deletes the key file so it is held by the kernel
// keyring only. Key source tpm2 (tpm2.go): the key is sealed to the
// instance's TPM at the first boot, with a recovery key shown once on the
// console. Either way a boot that cannot open the volume leaves it locked
// and the services that live on it down (fail closed: the mount is a real
// unit they require), and says why.
//
// firstboot creates <mount_point>/postgresql and the transfer data dir,
// owned by their service users when they exist; database.encrypted puts
// PostgreSQL's cluster in the first (and cmd/bulwark's firstboot seeds it).
package luks

import (
	"fmt"
	"path"
	"strings"

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
func Controls(p *policies.Policy, s provision.Stage) []provision.Control {
	return []provision.Control{
		&Firstboot{base: base{firstbootMeta}, LUKS: p.LUKS, DataDir: p.Transfer.DataDir},
		&Volume{base: base{volumeMeta}, LUKS: p.LUKS, Stage: s},
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
// which delivers a key (or after modules-load, which exposes the fw_cfg
// user data deploy/local hands over). When it cannot open the volume it
// fails, saying why on the console and in StatusFile, and the mount unit
// (renderMount) that requires it fails with it, so every service that
// requires the mount stays down: fail closed. With a delivered key the path
// unit starts it again when the key arrives. It is not ordered before
// transferd.socket: sockets start in sockets.target, before basic.target,
// which this unit (default dependencies) comes after, so that ordering was
// a cycle systemd broke by dropping the socket's start job at every boot.
// The socket may listen early; the service it starts waits for the mount.
// ExecStartPost starts, once the volume is up, what a late key or `bulwark
// unlock --recovery` held back: multi-user.target brings its own wants,
// and transferd.socket gives up after its service failed to start; each
// line may fail (the "-") where a unit is absent, as in a guest with only
// this family applied. When the volume
// stays locked, ExecStopPost closes transferd's socket: otherwise nginx's
// connection would sit in the socket's backlog for a service that cannot
// start until the proxy timed out, where now it is refused at once and
// nginx answers 503 with the reason (tls: unavailableBlock).
func renderUnit(l policies.LUKS) []byte {
	return []byte(`# Written by bulwark (control luks.firstboot).
[Unit]
Description=bulwark first boot: encrypt, unlock and mount the data volume
After=local-fs.target cloud-init-local.service cloud-init.service
Before=postgresql.service transferd.service ` + MountUnit(l) + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + Binary + ` --policy ` + PolicyFile + ` firstboot
ExecStartPost=-/usr/bin/systemctl --no-block start multi-user.target
ExecStartPost=-/usr/bin/systemctl --no-block start transferd.socket
ExecStopPost=-/bin/sh -c 'test "$$SERVICE_RESULT" = success || exec /usr/bin/systemctl --no-block stop transferd.socket'

[Install]
WantedBy=multi-user.target
`)
}

// renderMount declares the data volume's mount, so the services that live
// on it (RequiresMountsFor=) depend on a real unit rather than on a
// directory that happens to exist on the root disk. firstboot mounts the
// volume itself (it checks what it mounts); the unit requires firstboot and
// asserts the mapping exists, so when firstboot fails, or is skipped
// because there is no data device, the mount fails at once and takes its
// dependents with it instead of waiting out a device timeout. Default
// dependencies would order it before local-fs.target, which firstboot
// comes after: a cycle; it keeps only the unmount at shutdown.
func renderMount(l policies.LUKS) []byte {
	return []byte(`# Written by bulwark (control luks.firstboot).
[Unit]
Description=bulwark encrypted data volume
DefaultDependencies=no
Requires=` + UnitName + `
After=` + UnitName + `
Conflicts=umount.target
Before=umount.target
AssertPathExists=` + MapperPath + `

[Mount]
What=` + MapperPath + `
Where=` + l.MountPoint + `
Type=ext4
Options=nodev,nosuid
`)
}

// MountUnit is the name of the mount unit for l's mount point, escaped as
// systemd-escape --path --suffix=mount does.
func MountUnit(l policies.LUKS) string {
	return escapePath(l.MountPoint) + ".mount"
}

// MountUnitFile is where renderMount is installed.
func MountUnitFile(l policies.LUKS) string {
	return "/etc/systemd/system/" + MountUnit(l)
}

// escapePath is systemd's path escaping: slashes become dashes, and
// anything outside [A-Za-z0-9:_.] (and a leading dot) becomes \xNN.
func escapePath(p string) string {
	p = strings.Trim(path.Clean(p), "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0,
			!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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
