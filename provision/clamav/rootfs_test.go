//go:build linux

package clamav

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
)

// TestClamAVOnRootfs applies the family to a real Debian tree, proves the
// second Apply changes nothing, then breaks each control: Verify must fail
// (or warn, for stale signatures) naming the control, the property and the
// evidence, and Apply must repair what it owns.
func TestClamAVOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cs := Controls(p, provision.Instance)
	ct.ApplyTwice(t, root, cs)
	// The image is built offline: no signatures yet is a reasoned warning.
	fs := ct.Verify(ct.NewHost(t, root), cs)
	ct.RequireOK(t, fs, true)
	ct.RequireBroken(t, ct.Find(t, fs, sigMeta.ID, "signature freshness in /var/lib/clamav"), provision.Warn, "no .cvd")

	db := "/var/lib/clamav/daily.cvd"
	rig := ct.Offline(root)
	rig.Allow = func(f provision.Finding) bool { return f.Status == provision.Warn }
	ct.RequireBreakableOn(t, rig, cs, []ct.Breakage{
		{Name: "TCPSocket added", Break: func(t *testing.T) { appendTo(t, root, ClamdConf, "TCPSocket 3310\n") },
			Control: daemonMeta.ID, Property: ClamdConf + " TCPSocket", Evidence: "TCPSocket 3310"},
		{Name: "TCPAddr added", Break: func(t *testing.T) { appendTo(t, root, ClamdConf, "TCPAddr 0.0.0.0\n") },
			Control: daemonMeta.ID, Property: ClamdConf + " TCPAddr", Evidence: "TCPAddr 0.0.0.0"},
		{Name: "LocalSocket moved", Break: func(t *testing.T) {
			ct.Edit(t, root, ClamdConf, "LocalSocket "+p.ClamAV.Socket, "LocalSocket /tmp/clamd.sock")
		}, Control: daemonMeta.ID, Property: ClamdConf + " LocalSocket", Evidence: "LocalSocket /tmp/clamd.sock"},
		{Name: "StreamMaxLength back to Debian's 25M", Break: func(t *testing.T) {
			ct.Edit(t, root, ClamdConf, "StreamMaxLength 2049M", "StreamMaxLength 25M")
		}, Control: daemonMeta.ID, Property: ClamdConf + " StreamMaxLength", Evidence: "StreamMaxLength 25M"},
		{Name: "MaxFileSize one byte under the upload limit", Break: func(t *testing.T) {
			ct.Edit(t, root, ClamdConf, "MaxFileSize 2049M", "MaxFileSize 2147483647")
		}, Control: daemonMeta.ID, Property: ClamdConf + " MaxFileSize", Evidence: "MaxFileSize 2147483647"},
		{Name: "MaxScanSize removed (clamd default 400M)", Break: func(t *testing.T) {
			ct.Edit(t, root, ClamdConf, "MaxScanSize 2049M\n", "")
		}, Control: daemonMeta.ID, Property: ClamdConf + " MaxScanSize", Evidence: "MaxScanSize not set"},
		{Name: "AlertExceedsMax off: oversized files pass unscanned", Break: func(t *testing.T) {
			ct.Edit(t, root, ClamdConf, "AlertExceedsMax yes", "AlertExceedsMax no")
		}, Control: daemonMeta.ID, Property: ClamdConf + " AlertExceedsMax", Evidence: "AlertExceedsMax no"},
		{Name: "socket unit listens elsewhere", Break: func(t *testing.T) {
			ct.Edit(t, root, SocketDropIn, "ListenStream="+p.ClamAV.Socket, "ListenStream=3310")
		}, Control: daemonMeta.ID, Property: "file " + SocketDropIn, Evidence: "ListenStream=3310"},
		{Name: "clamd disabled", Break: func(t *testing.T) { ct.Remove(t, root, daemonUnit.WantsLink()) },
			Control: daemonMeta.ID, Property: "clamav-daemon.service enabled", Evidence: daemonUnit.WantsLink()},
		{Name: "clamd socket masked", Break: func(t *testing.T) { ct.Symlink(t, root, "/dev/null", socketUnit.MaskLink()) },
			Control: daemonMeta.ID, Property: "clamav-daemon.socket enabled", Evidence: "-> /dev/null"},
		{Name: "Checks lowered", Break: func(t *testing.T) { ct.Edit(t, root, FreshclamConf, "Checks 12", "Checks 1") },
			Control: sigMeta.ID, Property: FreshclamConf + " Checks", Evidence: "Checks 1"},
		{Name: "freshclam disabled", Break: func(t *testing.T) { ct.Remove(t, root, freshclamUnit.WantsLink()) },
			Control: sigMeta.ID, Property: "clamav-freshclam.service enabled", Evidence: freshclamUnit.WantsLink()},
		{Name: "freshclam moved to cron", Break: func(t *testing.T) { ct.Write(t, root, freshclamCron, "0 * * * * clamav freshclam\n") },
			Control: sigMeta.ID, Property: freshclamCron, Evidence: "present"},
		{Name: "signatures stale", Break: func(t *testing.T) {
			ct.Write(t, root, db, "x")
			old := time.Now().Add(-5 * time.Hour)
			if err := os.Chtimes(filepath.Join(root, db), old, old); err != nil {
				t.Fatal(err)
			}
		}, Control: sigMeta.ID, Property: "signature freshness in /var/lib/clamav", Evidence: db + ": modified", Status: provision.Warn,
			Cleanup: func(t *testing.T) { ct.Remove(t, root, db) }}, // test data, not bulwark's to repair
	})
}

func appendTo(t *testing.T, root, p, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, p), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestBadInputChangesNothing: invalid policy values are refused by Apply
// with the policy key named, before any file is touched.
func TestBadInputChangesNothing(t *testing.T) {
	root := basetest.Copy(t)
	tests := []struct {
		name string
		c    provision.Control
		want string
	}{
		{"relative socket", &Daemon{ClamAV: policies.ClamAV{Socket: "clamd.ctl"}, MaxUploadMiB: 2048}, "clamav.socket"},
		{"no upload limit to size clamd by", &Daemon{ClamAV: policies.ClamAV{Socket: "/run/clamav/clamd.ctl"}}, "transfer.max_upload_mib"},
		{"interval not dividing a day", &Signatures{ClamAV: policies.ClamAV{UpdateInterval: policies.Duration{Duration: 7 * time.Hour}}}, "clamav.update_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ct.NewHost(t, root)
			err := tt.c.Apply(context.Background(), h)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.c.Meta().ID) {
				t.Fatalf("Apply = %v; want an error naming %s and %s", err, tt.c.Meta().ID, tt.want)
			}
			if len(h.Changes()) != 0 {
				t.Fatalf("bad input changed %v", h.Changes())
			}
		})
	}
}

// TestEICARThroughRealClamd runs the live EICAR check against a real
// clamd (host-side, EICAR-only database), then stops clamd: the check
// must fail closed, naming the socket.
func TestEICARThroughRealClamd(t *testing.T) {
	clam := testsvc.Clamd(t)
	d := &Daemon{ClamAV: policies.ClamAV{Socket: clam.Socket, ScanTimeout: policies.Duration{Duration: 10 * time.Second}}}
	f := d.verifyEICAR()
	ct.RequireBroken(t, f, provision.Pass, "Eicar-Test-Signature")
	clam.Stop()
	f = d.verifyEICAR()
	ct.RequireBroken(t, f, provision.Fail, clam.Socket)
	if f.ControlID != "clamav.daemon" {
		t.Errorf("finding names %q", f.ControlID)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"2049M", 2049 << 20, false},
		{"25m", 25 << 20, false},
		{"4G", 4 << 30, false},
		{"512K", 512 << 10, false},
		{"1048576", 1 << 20, false},
		{"0", 0, false},
		{"", 0, true},
		{"12T", 0, true},
		{"-5M", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSetConf(t *testing.T) {
	in := "#c\nLocalSocket /a\nTCPSocket 3310\nFoo 1\nLocalSocket /b\n"
	got := string(setConf([]byte(in), [][2]string{{"LocalSocket", "/run/x"}, {"Bar", "2"}}, []string{"TCPSocket"}))
	want := "#c\nLocalSocket /run/x\nFoo 1\nBar 2\n"
	if got != want {
		t.Fatalf("setConf = %q, want %q", got, want)
	}
	if again := string(setConf([]byte(got), [][2]string{{"LocalSocket", "/run/x"}, {"Bar", "2"}}, []string{"TCPSocket"})); again != got {
		t.Fatalf("second setConf changed %q to %q", got, again)
	}
}

// TestLimitsAgainstRealClamd shows, on a real clamd, what the size limits
// do to an upload of max_upload_mib (3 MiB here), and that Verify judges
// each configuration the same way: a stream limit below the upload makes
// clamd refuse it; a file limit below it passes it unscanned ("OK") unless
// AlertExceedsMax turns that into a detection; bulwark's own rendering
// scans it whole.
func TestLimitsAgainstRealClamd(t *testing.T) {
	const uploadMiB = 3
	d := &Daemon{MaxUploadMiB: uploadMiB}
	var ours strings.Builder
	for _, kv := range append(d.limits(), [2]string{"AlertExceedsMax", "yes"}) {
		ours.WriteString(kv[0] + " " + kv[1] + "\n")
	}
	tests := []struct {
		name    string
		limits  string
		verdict string // "refused", "OK" or the signature clamd reports
		failing string // the limit Verify must fail; "" when all pass
	}{
		{"stream limit below the upload", "StreamMaxLength 1M\nMaxScanSize 100M\nMaxFileSize 100M\n", "refused", "StreamMaxLength"},
		{"file limit below the upload: skipped silently", "StreamMaxLength 100M\nMaxScanSize 100M\nMaxFileSize 1M\n", "OK", "MaxFileSize"},
		{"file limit below the upload, AlertExceedsMax", "StreamMaxLength 100M\nMaxScanSize 100M\nMaxFileSize 1M\nAlertExceedsMax yes\n", "Heuristics.Limits.Exceeded", "MaxFileSize"},
		{"bulwark's limits", ours.String(), "OK", ""},
	}
	upload := make([]byte, uploadMiB<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clam := testsvc.ClamdWith(t, tt.limits)
			v, err := scanBytes(&scan.Client{Socket: clam.Socket, Timeout: time.Minute}, upload)
			got := "OK"
			switch {
			case err != nil:
				got = "refused"
				t.Logf("clamd: %v", err)
			case v.Infected:
				got = v.Signature
			}
			if !strings.HasPrefix(got, tt.verdict) {
				t.Fatalf("%d MiB upload: clamd says %q; want %q", uploadMiB, got, tt.verdict)
			}
			fs := limitFindings(daemonMeta, ct.NewHost(t, "/"), clam.Conf, limitKeys, uploadMiB)
			for _, f := range fs {
				wantFail := tt.failing != "" && strings.HasSuffix(f.Property, " "+tt.failing)
				if (f.Status == provision.Fail) != wantFail {
					t.Errorf("%s %s = %s (%s); want fail %v", f.ControlID, f.Property, f.Status, ct.EvidenceText(f), wantFail)
				}
			}
		})
	}
}
