//go:build linux

package audit

import (
	"context"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestPreflightDoesNotFollowPlantedLink: the candidate once went to this
// fixed name under /tmp, written as root with a call that follows links.
// A link planted there must not get its target overwritten. The tree has
// no rsyslogd, so the pre-flight fails after writing its candidate; only
// where the candidate went matters here.
func TestPreflightDoesNotFollowPlantedLink(t *testing.T) {
	const oldCandidate = "/tmp/.bulwark-rsyslog-candidate.conf"
	f := &Forward{Syslog: loadPolicy(t, siemPolicy).Syslog}
	want, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	ct.RequireLinkNotFollowed(t, oldCandidate, func(*testing.T, string) {}, func(t *testing.T, h host.Host) {
		err := preflight(context.Background(), h, want)
		t.Logf("pre-flight without rsyslogd: %v", err)
	})
}
