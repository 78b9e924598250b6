package pro

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// fakePro is an offline root whose `pro` commands are scripted: status
// prints the JSON of attached, detach flips it (unless stuck) or fails.
// Files (the client's presence) are the real root's.
type fakePro struct {
	*host.Local
	attached  bool
	status    string // when set, printed instead of the JSON of attached
	statusErr error
	detachErr error
	stuck     bool // detach succeeds but the status stays attached
	calls     []string
}

func (f *fakePro) Query(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	if f.statusErr != nil {
		return []byte("pro: " + f.statusErr.Error()), f.statusErr
	}
	if f.status != "" {
		return []byte(f.status), nil
	}
	if f.attached {
		return []byte(`{"attached": true, "services": [{"name": "fips-updates", "status": "enabled"}]}`), nil
	}
	return []byte(`{"attached": false, "services": []}`), nil
}

func (f *fakePro) Exec(ctx context.Context, why, name string, args ...string) error {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	if f.DryRun() {
		return nil
	}
	if f.detachErr != nil {
		return f.detachErr
	}
	f.attached = f.attached && f.stuck
	return nil
}

// TestSeal is the decision table: no client, detached, attached, and each
// way detaching can go wrong; every error says what and why.
func TestSeal(t *testing.T) {
	const status, detach = "pro status --format json", "pro detach --assume-yes"
	tests := []struct {
		name      string
		noClient  bool
		fake      fakePro
		dryRun    bool
		wantCalls []string
		wantNote  string
		wantErr   string
	}{
		{name: "debian: no pro client", noClient: true, wantNote: "no Ubuntu Pro client (/usr/bin/pro absent)"},
		{name: "detached", wantCalls: []string{status}, wantNote: "not attached"},
		{name: "attached", fake: fakePro{attached: true}, wantCalls: []string{status, detach, status}, wantNote: "detached (pro status: attached false)"},
		{name: "attached, dry run", fake: fakePro{attached: true}, dryRun: true, wantCalls: []string{status, detach}, wantNote: "would run pro detach"},
		{name: "warning before the JSON", fake: fakePro{status: "WARNING: apt news unavailable\n{\"attached\": false}\n"}, wantCalls: []string{status}, wantNote: "not attached"},
		{name: "detach fails", fake: fakePro{attached: true, detachErr: errors.New("exit status 1: contract server unreachable")},
			wantCalls: []string{status, detach}, wantErr: "pro detach: exit status 1: contract server unreachable"},
		{name: "still attached after detach", fake: fakePro{attached: true, stuck: true},
			wantCalls: []string{status, detach, status}, wantErr: "still says attached true"},
		{name: "status fails", fake: fakePro{statusErr: errors.New("exit status 1")}, wantCalls: []string{status}, wantErr: "pro status: exit status 1"},
		{name: "status not JSON", fake: fakePro{status: "Usage: pro <command>"}, wantCalls: []string{status}, wantErr: "printed no JSON"},
		{name: "status without attached", fake: fakePro{status: `{"services": []}`}, wantCalls: []string{status}, wantErr: `no "attached" field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if !tt.noClient {
				checktest.Write(t, root, Client, "#!/bin/sh\n")
			}
			var opts []host.Option
			if tt.dryRun {
				opts = append(opts, host.DryRun())
			}
			f := tt.fake
			f.Local = checktest.NewHost(t, root, opts...)
			note, err := Seal(context.Background(), &f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Seal = %q, %v; want an error naming %q", note, err, tt.wantErr)
				}
			} else if err != nil || !strings.Contains(note, tt.wantNote) {
				t.Fatalf("Seal = %q, %v; want a note saying %q", note, err, tt.wantNote)
			}
			if strings.Join(f.calls, "; ") != strings.Join(tt.wantCalls, "; ") {
				t.Errorf("ran %q, want %q", f.calls, tt.wantCalls)
			}
		})
	}
}
