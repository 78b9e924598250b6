//go:build linux

package audit

import (
	"context"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files and units audit.forward owns.
const (
	ForwardFile = "/etc/rsyslog.d/60-bulwark-forward.conf"
	// candidate names the config checked before it goes live, inside the
	// pre-flight's private scratch directory under /tmp: not under
	// /etc/rsyslog.d, whose *.conf the running daemon would read.
	candidate = "rsyslog.conf"
	// QueueFile names the disk queue in rsyslog's work directory
	// (/var/spool/rsyslog on Debian).
	QueueFile = "bulwark-siem"
)

var rsyslogUnit = check.Unit{Name: "rsyslog.service", Target: "multi-user.target"}

var forwardMeta = provision.Meta{
	ID:    "audit.forward",
	Title: "Logs forwarded over TLS to the SIEM, queued on disk during outages",
	Rows:  []string{"SOC2:CC2", "SOC2:CC4", "SOX:Logging and Audit Trails", "SOX:Audit Independence", "SOX:Incident Detection"},
}

// Forward is the control audit.forward (policy syslog.*; the firewall's
// network.log_prefix names the kernel lines it must carry).
type Forward struct {
	Syslog    policies.Syslog
	LogPrefix string
}

func (*Forward) Meta() provision.Meta { return forwardMeta }

// target splits and checks the policy's SIEM address.
func (f *Forward) target() (string, int, error) {
	host, port, err := net.SplitHostPort(f.Syslog.Target)
	if err != nil {
		return "", 0, fmt.Errorf("syslog.target %q: want host:port: %w", f.Syslog.Target, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || host == "" {
		return "", 0, fmt.Errorf("syslog.target %q: want host:port with a port in 1-65535", f.Syslog.Target)
	}
	if f.Syslog.Protocol != "tcp+tls" {
		return "", 0, fmt.Errorf("syslog.protocol %q: only tcp+tls is supported (logs never leave the appliance in clear)", f.Syslog.Protocol)
	}
	if !path.IsAbs(f.Syslog.CAFile) {
		return "", 0, fmt.Errorf("syslog.ca_file %q: want the absolute path of the SIEM's CA certificate on the appliance", f.Syslog.CAFile)
	}
	return host, n, nil
}

// Render is the rsyslog fragment for the policy. Everything at info and
// above goes, plus two streams named explicitly so a change of severity
// cannot drop them: the firewall's drop log (kernel lines with the
// policy's prefix) and transferd's journal entries. One action, so each
// line is sent once. The LinkedList queue with a file name is disk
// assisted: while the SIEM is down, lines wait on disk (and survive a
// restart) instead of being dropped.
func (f *Forward) Render() ([]byte, error) {
	host, port, err := f.target()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Written by bulwark (control audit.forward) from the appliance policy.\n")
	fmt.Fprintf(&b, "if prifilt(\"*.info\") or ($syslogfacility-text == \"kern\" and $msg contains %s) or $programname == \"transferd\" then {\n", quote(f.LogPrefix))
	fmt.Fprintf(&b, "  action(type=\"omfwd\" target=%s port=\"%d\" protocol=\"tcp\"\n", quote(host), port)
	b.WriteString("    TCP_Framing=\"octet-counted\"\n")
	// x509/name: the SIEM's certificate must chain to the policy's CA
	// and name the target; anything less is forwarding to whoever answers.
	fmt.Fprintf(&b, "    StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\"\n")
	fmt.Fprintf(&b, "    StreamDriverPermittedPeers=%s StreamDriver.CAFile=%s\n", quote(host), quote(f.Syslog.CAFile))
	fmt.Fprintf(&b, "    queue.type=\"LinkedList\" queue.filename=%q queue.maxDiskSpace=\"1g\"\n", QueueFile)
	b.WriteString("    queue.saveOnShutdown=\"on\" action.resumeRetryCount=\"-1\" action.resumeInterval=\"10\")\n}\n")
	return []byte(b.String()), nil
}

// quote writes an rsyslog string constant: backslash and double quote are
// the characters it escapes.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Apply converges the forwarding file: removed when no SIEM target is set,
// otherwise checked by rsyslogd -N1 before it replaces the live one, and,
// live, rsyslog restarted to pick it up.
func (f *Forward) Apply(ctx context.Context, h host.Host) error {
	before := len(h.Changes())
	if f.Syslog.Target == "" {
		if err := h.Remove(ForwardFile); err != nil {
			return forwardMeta.Wrap("remove "+ForwardFile, err)
		}
		return forwardMeta.Wrap("restart", restartIfChanged(ctx, h, before, rsyslogUnit.Name))
	}
	want, err := f.Render()
	if err != nil {
		return forwardMeta.Wrap("policy", err)
	}
	if _, err := h.Stat(f.Syslog.CAFile); err != nil {
		return forwardMeta.Wrap("policy", fmt.Errorf("syslog.ca_file %s: %w", f.Syslog.CAFile, err))
	}
	if err := preflight(ctx, h, want); err != nil {
		return err
	}
	if err := h.WriteFile(ForwardFile, want, 0o644); err != nil {
		return forwardMeta.Wrap("write "+ForwardFile, err)
	}
	if err := rsyslogUnit.Enable(ctx, h); err != nil {
		return forwardMeta.Wrap("enable", err)
	}
	return forwardMeta.Wrap("restart", restartIfChanged(ctx, h, before, rsyslogUnit.Name))
}

// preflight has rsyslogd validate the fragment on its own. The candidate is
// a test, not a change, so it bypasses the host's change record; it is
// checked even under dry-run, since it changes nothing.
func preflight(ctx context.Context, h host.Host, want []byte) error {
	s, err := host.NewScratch(h, "rsyslog")
	if err != nil {
		return forwardMeta.Wrap("pre-flight", err)
	}
	defer s.Close()
	if err := s.Write(candidate, want); err != nil {
		return forwardMeta.Wrap("pre-flight", err)
	}
	if out, err := check.Combined(ctx, h, "rsyslogd", "-N1", "-f", s.Target(candidate)); err != nil {
		return fmt.Errorf("audit.forward: pre-flight `rsyslogd -N1` refused the new config, nothing written: %w (%s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Verify reports not-applicable (never pass) without a target; otherwise
// the file, rsyslog's own validation of the whole configuration, and the
// unit.
func (f *Forward) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if f.Syslog.Target == "" {
		n := forwardMeta.Finding("SIEM forwarding", "forwarding over TLS to syslog.target")
		n.Status, n.Actual, n.Reason = provision.NotApplicable, "no target", "no SIEM target configured"
		n.Evidence = []provision.Evidence{{Source: "policy syslog.target", Read: `""`}}
		return check.Timed([]provision.Finding{n}, start)
	}
	want, err := f.Render()
	if err != nil {
		n := forwardMeta.Finding("policy syslog", "a valid TLS target")
		return check.Timed([]provision.Finding{check.Fail(n, "invalid", err.Error(), provision.Evidence{Source: "policy syslog", Read: err.Error()})}, start)
	}
	out := []provision.Finding{check.File(forwardMeta, h, ForwardFile, want), validate(ctx, h)}
	if h.Live() {
		out = append(out, check.Active(ctx, forwardMeta, rsyslogUnit.Name))
	}
	out = append(out, rsyslogUnit.Enabled(forwardMeta, h))
	return check.Timed(out, start)
}

// validate runs rsyslogd's config check over the whole configuration, the
// way the daemon reads it at start.
func validate(ctx context.Context, h host.Host) provision.Finding {
	f := forwardMeta.Finding("rsyslog configuration", "accepted by rsyslogd -N1")
	out, err := check.Combined(ctx, h, "rsyslogd", "-N1")
	read := strings.TrimSpace(string(out))
	if read == "" && err == nil {
		read = "exit status 0"
	}
	ev := provision.Evidence{Source: "rsyslogd -N1", Read: read}
	if err != nil {
		return check.Fail(f, "refused", "rsyslog would not start with this configuration: "+err.Error(), ev)
	}
	return check.Pass(f, "accepted", ev)
}
