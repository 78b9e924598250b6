package ssh

import (
	"context"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestPreflightDoesNotFollowPlantedLink: the candidate once went to this
// fixed name under /tmp, written as root with a call that follows links.
// A link planted there must not get its target overwritten. The tree has
// no sshd, so the pre-flight fails after writing its candidate; only where
// the candidate went matters here.
func TestPreflightDoesNotFollowPlantedLink(t *testing.T) {
	const oldCandidate = "/tmp/.bulwark-sshd-candidate.conf"
	d := defaultDaemon(t)
	setup := func(t *testing.T, root string) { ct.Write(t, root, MainConfig, "Port 22\n") }
	ct.RequireLinkNotFollowed(t, oldCandidate, setup, func(t *testing.T, h host.Host) {
		err := d.preflight(context.Background(), h, d.Render())
		t.Logf("pre-flight without sshd: %v", err)
	})
}
