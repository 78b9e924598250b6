package baseline

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// SessionFile is the profile.d script baseline.session owns. Every login
// shell (console and SSH) sources /etc/profile.d/*.sh before the user's
// own files, so the user cannot set TMOUT first.
const SessionFile = "/etc/profile.d/60-bulwark-timeout.sh"

var sessionMeta = provision.Meta{
	ID:    "baseline.session",
	Title: "Idle interactive shells end after the policy's timeout",
	Rows:  []string{"SOC2:CC6"},
}

// Session is the control baseline.session (policy baseline.shell_timeout,
// Lynis SHLL-6220): an admin who walks away from a console or SSH session
// does not leave a root-capable shell open for the next person.
type Session struct{ Timeout time.Duration }

func (*Session) Meta() provision.Meta { return sessionMeta }

// Render is the script. TMOUT is made read-only so the session cannot
// lift it, and set only when it is not already this value, so a nested
// login shell (bash -l inside a session) does not fail assigning a
// read-only variable.
func (s *Session) Render() []byte {
	secs := int64(s.Timeout / time.Second)
	return fmt.Appendf(nil, `# Written by bulwark (control baseline.session) from policy baseline.shell_timeout.
# An idle interactive shell exits after TMOUT seconds.
if [ "${TMOUT:-}" != %d ]; then
	TMOUT=%d
	readonly TMOUT
	export TMOUT
fi
`, secs, secs)
}

// Apply writes the script.
func (s *Session) Apply(ctx context.Context, h host.Host) error {
	if s.Timeout < time.Second {
		return fmt.Errorf("%s: policy baseline.shell_timeout %s is under a second", sessionMeta.ID, s.Timeout)
	}
	return sessionMeta.Wrap("write "+SessionFile, h.WriteFile(SessionFile, s.Render(), 0o644))
}

// Verify checks the script is exactly what the policy renders.
func (s *Session) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	return check.Timed([]provision.Finding{check.File(sessionMeta, h, SessionFile, s.Render())}, start)
}
