package clamav

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
)

// Files clamav.daemon owns or edits.
const (
	ClamdConf    = "/etc/clamav/clamd.conf"
	SocketDropIn = "/etc/systemd/system/clamav-daemon.socket.d/bulwark.conf"
)

var (
	daemonUnit = check.Unit{Name: "clamav-daemon.service", Target: "multi-user.target"}
	socketUnit = check.Unit{Name: "clamav-daemon.socket", Target: "sockets.target"}
)

var daemonMeta = provision.Meta{
	ID:    "clamav.daemon",
	Title: "clamd scans on a Unix socket only and detects the EICAR test file",
	Rows:  rows,
}

// EICAR is the standard antivirus test file, split so this binary is not
// itself flagged by a scanner.
var EICAR = []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + `EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)

// Daemon is the control clamav.daemon (policy clamav.socket, and
// transfer.max_upload_mib for clamd's size limits).
type Daemon struct {
	policies.ClamAV
	// MaxUploadMiB is transferd's upload bound: clamd must accept and
	// scan a stream that large, or big uploads are refused or skipped.
	MaxUploadMiB int64
	// Stage: the build VM has no signatures, so clamd cannot run there.
	Stage provision.Stage
}

func (*Daemon) Meta() provision.Meta { return daemonMeta }

// VerifyAlone keeps the EICAR scan from sharing clamd with another
// control's probe: a scan queued behind others could time out and read as
// a broken scanner.
func (d *Daemon) VerifyAlone() bool { return true }

// TCP options are dropped: transferd talks to clamd over the Unix socket,
// and a TCP listener would let anything on the network use the scanner.
var tcpKeys = []string{"TCPSocket", "TCPAddr"}

func (d *Daemon) set() [][2]string {
	return [][2]string{{"LocalSocket", d.Socket}, {"AlertExceedsMax", "yes"}}
}

// limitKeys are clamd's size limits an upload must fit under. Debian ships
// 25M/100M: with those, clamd closes the stream of a big upload
// (StreamMaxLength) or passes it unscanned (MaxFileSize, MaxScanSize);
// AlertExceedsMax turns the latter into a detection, so it fails closed.
var limitKeys = []string{"StreamMaxLength", "MaxScanSize", "MaxFileSize"}

// limit is what Apply writes: the upload bound plus 1 MiB of headroom,
// so a file of exactly max_upload_mib is still inside every limit.
func (d *Daemon) limit() string { return strconv.FormatInt(d.MaxUploadMiB+1, 10) + "M" }

func (d *Daemon) limits() [][2]string {
	var kv [][2]string
	for _, k := range limitKeys {
		kv = append(kv, [2]string{k, d.limit()})
	}
	return kv
}

// dropIn makes systemd's socket activation listen where clamd.conf says:
// Debian's unit hard-codes /run/clamav/clamd.ctl.
func (d *Daemon) dropIn() []byte {
	return []byte("# Written by bulwark (control clamav.daemon) from the appliance policy.\n[Socket]\nListenStream=\nListenStream=" + d.Socket + "\n")
}

// Apply edits clamd.conf, writes the socket drop-in, enables the units and
// (live) restarts clamd when its configuration changed.
func (d *Daemon) Apply(ctx context.Context, h host.Host) error {
	if d.Socket == "" || d.Socket[0] != '/' || bytes.ContainsAny([]byte(d.Socket), " \n") {
		return daemonMeta.Wrap("validate", fmt.Errorf("policy clamav.socket %q must be an absolute path without spaces", d.Socket))
	}
	if d.MaxUploadMiB < 1 {
		return daemonMeta.Wrap("validate", fmt.Errorf("policy transfer.max_upload_mib %d must be at least 1: clamd's size limits are derived from it", d.MaxUploadMiB))
	}
	before := len(h.Changes())
	if err := convergeConf(h, daemonMeta, ClamdConf, append(d.set(), d.limits()...), tcpKeys); err != nil {
		return err
	}
	if err := check.PreflightUnits(ctx, h, daemonMeta, check.UnitFile{Path: SocketDropIn, Data: d.dropIn()}); err != nil {
		return err
	}
	if err := h.WriteFile(SocketDropIn, d.dropIn(), 0o644); err != nil {
		return daemonMeta.Wrap("write "+SocketDropIn, err)
	}
	for _, u := range []check.Unit{socketUnit, daemonUnit} {
		if err := u.Enable(ctx, h); err != nil {
			return daemonMeta.Wrap("enable", err)
		}
	}
	return check.Converge(ctx, h, daemonMeta, len(h.Changes()) > before, socketUnit.Name, daemonUnit.Name)
}

// Verify checks the effective clamd.conf values, the drop-in and the
// units' enablement; live, the units run and EICAR is detected.
func (d *Daemon) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := confFindings(daemonMeta, h, ClamdConf, d.set(), tcpKeys)
	out = append(out, limitFindings(daemonMeta, h, ClamdConf, limitKeys, d.MaxUploadMiB)...)
	out = append(out, check.File(daemonMeta, h, SocketDropIn, d.dropIn()))
	out = append(out, socketUnit.Enabled(daemonMeta, h), daemonUnit.Enabled(daemonMeta, h))
	if h.Live() {
		out = append(out,
			instanceOnly(d.Stage, daemonMeta, "unit "+socketUnit.Name, func() provision.Finding { return check.Active(ctx, daemonMeta, socketUnit.Name) }),
			instanceOnly(d.Stage, daemonMeta, "unit "+daemonUnit.Name, func() provision.Finding { return check.Active(ctx, daemonMeta, daemonUnit.Name) }),
			instanceOnly(d.Stage, daemonMeta, "EICAR scan via "+d.Socket, d.verifyEICAR))
	}
	return check.Timed(out, start)
}

// verifyEICAR streams the test file through the same client transferd
// uses: the end-to-end proof that uploads are actually scanned.
func (d *Daemon) verifyEICAR() provision.Finding {
	f := daemonMeta.Finding("EICAR scan via "+d.Socket, "FOUND")
	src := "clamd INSTREAM " + d.Socket
	timeout := d.ScanTimeout.Duration
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	c := &scan.Client{Socket: d.Socket, Timeout: timeout}
	v, err := scanBytes(c, EICAR)
	if err != nil {
		return check.Fail(f, "no verdict", "clamd did not answer; uploads would be refused", provision.Evidence{Source: src, Read: err.Error()})
	}
	if !v.Infected {
		return check.Fail(f, "OK", "clamd did not detect EICAR: its signatures are missing or broken", provision.Evidence{Source: src, Read: "stream: OK"})
	}
	return check.Pass(f, "FOUND", provision.Evidence{Source: src, Read: "stream: " + v.Signature + " FOUND"})
}

func scanBytes(c *scan.Client, b []byte) (scan.Verdict, error) {
	s, err := c.Start()
	if err != nil {
		return scan.Verdict{}, err
	}
	s.Write(b) // a write error is kept by the stream and returned by Finish, which closes it
	return s.Finish()
}

// instanceOnly runs check on an instance; in the image build VM, where
// the signature servers are out of reach, clamd has no signatures to start
// with, so what needs a running clamd is not applicable there — it is
// proven on the instance, after freshclam's first run.
func instanceOnly(s provision.Stage, m provision.Meta, property string, check func() provision.Finding) provision.Finding {
	f := m.Finding(property, "checked on the instance")
	if s.InstanceOnly(&f, "no signatures in the build VM: clamd starts after freshclam's first download on the instance") {
		return f
	}
	return check()
}
