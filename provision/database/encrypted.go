//go:build linux

package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/pginstall"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// The cluster's data (users, TOTP secrets, message subjects and
// recipients, the audit trail) lives on the encrypted data volume, not on
// the root disk. The image cannot put it there: the volume is formatted
// with each instance's own key at its first boot (luks.firstboot). So the
// image carries the cluster PostgreSQL's package created (empty but for
// transferd's role and database) at Debian's path as a template, a
// conf.d file pointing data_directory at the volume, and a unit drop-in
// that holds the cluster down until the volume is mounted. At first boot,
// once the volume is open, Seed copies the template there.

var encryptedMeta = provision.Meta{
	ID:    "database.encrypted",
	Title: "PostgreSQL's data directory is on the encrypted data volume",
	Rows:  []string{"SOC2:C1.2", "SOC2:C1.3", "SOX:Encryption at Rest"},
}

// Encrypted is the control database.encrypted.
type Encrypted struct {
	MountPoint string // policy luks.mount_point
	// Stage: the build VM's cluster is the template, not yet on a volume.
	Stage provision.Stage
}

func (*Encrypted) Meta() provision.Meta { return encryptedMeta }

// VolumeDataDir is where cluster <v>/main keeps its data on a volume
// mounted at mountPoint: Debian's layout under the mount point.
func (l Layout) VolumeDataDir(mountPoint string) string {
	return path.Join(mountPoint, "postgresql", l.Version, "main")
}

// volumeConf sets data_directory; a conf.d file, so database.config's
// drop-in and Debian's postgresql.conf stay as they are. postgresql-common
// (pg_ctlcluster, pg_lsclusters) follows include_dir too.
func (l Layout) volumeConf() string {
	return path.Join(l.ConfDir, "conf.d", "bulwark-data-volume.conf")
}

// unitDropIn is the cluster unit's drop-in.
func (l Layout) unitDropIn() string {
	return "/etc/systemd/system/" + l.ClusterSvc + ".d/bulwark-data-volume.conf"
}

func (l Layout) renderVolumeConf(mountPoint string) []byte {
	return []byte("# Written by bulwark (control database.encrypted): the cluster's data lives on\n" +
		"# the encrypted data volume (policy luks.mount_point), never on the root disk.\n" +
		"data_directory = '" + l.VolumeDataDir(mountPoint) + "'\n")
}

// renderUnitDropIn: RequiresMountsFor= orders the cluster after the
// volume's mount unit (luks.firstboot) and fails it with the mount, so a
// locked volume keeps the server down instead of letting it start on, or
// create, a directory on the root disk. After= the firstboot unit as well:
// the mount unit turns active the moment firstboot mounts the volume,
// before Seed has copied the cluster there, and the server started then
// and failed ("… is not accessible or does not exist", seen on a first
// boot of the e2e image, until firstboot's ExecStartPost started it again).
// firstboot's own Before= names postgresql.service, which is Debian's
// umbrella unit, not this cluster's.
func (l Layout) renderUnitDropIn(mountPoint string) []byte {
	return []byte("# Written by bulwark (control database.encrypted): the cluster starts only on\n" +
		"# the mounted data volume, once first boot has put its data there; while the\n" +
		"# volume is locked it stays down.\n" +
		"[Unit]\nRequiresMountsFor=" + l.VolumeDataDir(mountPoint) + "\nAfter=" + luks.UnitName + "\n")
}

// Apply writes the conf.d file and the unit drop-in. Live, when the
// volume is mounted, it seeds the volume's cluster if that is still empty
// and restarts the server when it is not running from there; when the
// volume is not mounted (the image build, a locked instance) the server is
// left alone and moves at the next first boot.
func (c *Encrypted) Apply(ctx context.Context, h host.Host) error {
	l, err := Discover(h)
	if err != nil {
		return encryptedMeta.Wrap("layout", err)
	}
	before := len(h.Changes())
	if err := writeConf(ctx, h, l, confFile{l.volumeConf(), l.renderVolumeConf(c.MountPoint)}); err != nil {
		return encryptedMeta.Wrap("configuration", err)
	}
	if err := h.WriteFile(l.unitDropIn(), l.renderUnitDropIn(c.MountPoint), 0o644); err != nil {
		return encryptedMeta.Wrap("write "+l.unitDropIn(), err)
	}
	if !h.Live() {
		return nil
	}
	if len(h.Changes()) != before {
		if err := h.Exec(ctx, "reload systemd units", "systemctl", "daemon-reload"); err != nil {
			return encryptedMeta.Wrap("daemon-reload", err)
		}
	}
	b, err := luks.BackingOf(h, c.MountPoint)
	if err != nil {
		return encryptedMeta.Wrap("find the data volume", err)
	}
	if !b.Encrypted() || b.Mount != c.MountPoint {
		return nil
	}
	if err := Seed(ctx, h, c.MountPoint); err != nil {
		return encryptedMeta.Wrap("seed", err)
	}
	if got, err := psql(ctx, h, "SHOW data_directory"); err == nil && got == l.VolumeDataDir(c.MountPoint) {
		return nil
	}
	return encryptedMeta.Wrap("restart", h.Exec(ctx, "restart "+l.ClusterSvc+" on the data volume", "systemctl", "restart", l.ClusterSvc))
}

// Seed gives the cluster its data directory on the volume mounted at
// mountPoint, when database.encrypted put data_directory there and it is
// still empty: the template cluster is copied (under a temporary name,
// renamed when complete, so a crash leaves no half cluster the server
// would start on). A running server is stopped first, so the copy is
// consistent; whoever called Seed starts it again (the firstboot unit
// starts multi-user.target when it is done). No PostgreSQL installed, or
// the control not applied, is nothing to do. h must be the live host,
// with the volume mounted.
func Seed(ctx context.Context, h host.Host, mountPoint string) error {
	l, err := Discover(h)
	if errors.Is(err, pginstall.ErrNotInstalled) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := h.Stat(l.volumeConf()); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	dir := l.VolumeDataDir(mountPoint)
	if _, err := h.Stat(path.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	if _, err := h.Stat(path.Join(l.DataDir, "PG_VERSION")); err != nil {
		return fmt.Errorf("seed %s: no template cluster at %s to copy: %w", dir, l.DataDir, err)
	}
	if _, err := h.Query(ctx, "systemctl", "is-active", "--quiet", l.ClusterSvc); err == nil {
		if err := h.Exec(ctx, "stop "+l.ClusterSvc+" to copy its data consistently", "systemctl", "stop", l.ClusterSvc); err != nil {
			return fmt.Errorf("seed %s: %w", dir, err)
		}
	}
	tmp := dir + ".seeding"
	steps := []struct {
		why  string
		args []string
	}{
		{"create " + path.Dir(dir), []string{"install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", path.Dir(path.Dir(dir)), path.Dir(dir)}},
		{"clear a partial copy", []string{"rm", "-rf", "--one-file-system", tmp}},
		{"copy the template cluster onto the data volume", []string{"cp", "-a", l.DataDir, tmp}},
		{"put the cluster in place", []string{"mv", "-T", tmp, dir}},
	}
	for _, s := range steps {
		if err := h.Exec(ctx, s.why, s.args[0], s.args[1:]...); err != nil {
			return fmt.Errorf("seed %s: %s: %w", dir, s.why, err)
		}
	}
	return nil
}

// Verify reads where the files put the data directory (postgres -C) and,
// on an instance, where the running server has it (SHOW data_directory),
// resolved through the kernel's mount table to its device: it passes only
// on a dm-crypt mapping at the volume's mount point.
func (c *Encrypted) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	l, err := Discover(h)
	if err != nil {
		return check.Timed([]provision.Finding{notInstalled(encryptedMeta, err)}, start)
	}
	want := l.VolumeDataDir(c.MountPoint)
	out := []provision.Finding{
		check.File(encryptedMeta, h, l.volumeConf(), l.renderVolumeConf(c.MountPoint)),
		check.File(encryptedMeta, h, l.unitDropIn(), l.renderUnitDropIn(c.MountPoint)),
	}
	f := encryptedMeta.Finding("data_directory (postgres -C)", quote(want))
	var srv *serverSettings
	if h.Live() {
		if r, err := live(ctx, h, l); err == nil {
			srv = &r
		}
	}
	got, src, err := c.fromFiles(ctx, h, l, srv)
	switch {
	case err != nil:
		out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()}))
	case got != want:
		out = append(out, check.Fail(f, quote(got), "the server would start on a data directory off the encrypted volume; run bulwark apply",
			provision.Evidence{Source: src, Read: "data_directory = " + quote(got)}))
	default:
		out = append(out, check.Pass(f, quote(got), provision.Evidence{Source: src, Read: "data_directory = " + quote(got)}))
	}
	if h.Live() {
		out = append(out, c.running(ctx, h, l, want))
	}
	return check.Timed(out, start)
}

// fromFiles is data_directory as the files give it to the server's next
// start. The running server answers from pg_file_settings in the query
// every database control shares; the server binary (postgres -C, a
// process costing a second on a slow guest) only when no server answers,
// or it runs from other files than l's, or its files have errors (as in
// database.config's settingFindings).
func (c *Encrypted) fromFiles(ctx context.Context, h host.Host, l Layout, srv *serverSettings) (string, string, error) {
	if srv != nil && srv.ConfigFile == l.MainConf && len(srv.Errors) == 0 {
		if st, ok := srv.setting("data_directory"); ok && st.Known {
			v, from := st.fileValue()
			return v, "psql over " + Socket + ": pg_file_settings (" + from + ")", nil
		}
	}
	return fileSetting(ctx, h, l, "data_directory")
}

// running resolves the running server's data directory to its device.
func (c *Encrypted) running(ctx context.Context, h host.Host, l Layout, want string) provision.Finding {
	f := encryptedMeta.Finding("data_directory (running server)", want+" on a dm-crypt mapping mounted at "+c.MountPoint)
	if c.Stage.InstanceOnly(&f, "the volume is encrypted at each instance's first boot; the image's cluster is the template it is seeded from") {
		return f
	}
	// pg_settings.setting of data_directory is what SHOW prints.
	r, err := live(ctx, h, l)
	st, _ := r.setting("data_directory")
	got := st.Running
	src := "psql over " + Socket + ": pg_settings data_directory (SHOW data_directory)"
	if err != nil {
		return check.Fail(f, "server not answering", "PostgreSQL is not running (a locked volume keeps it down)", provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: got}
	b, err := luks.BackingOf(h, got)
	if err != nil {
		return check.Fail(f, "unresolvable", err.Error(), ev, provision.Evidence{Source: "/proc/self/mounts", Read: err.Error()})
	}
	evs := append([]provision.Evidence{ev}, b.Evidence...)
	actual := got + " on " + b.String()
	if !b.Encrypted() {
		return check.Fail(f, actual, "the database's files are written unencrypted", evs...)
	}
	if got != want || b.Mount != c.MountPoint {
		return check.Fail(f, actual, "the server runs from a data directory other than the volume's; restart it after bulwark apply", evs...)
	}
	return check.Pass(f, actual, evs...)
}
