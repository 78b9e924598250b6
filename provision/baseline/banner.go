package baseline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// BannerFiles are where the notice is shown: the console before login
// (getty), SSH before authentication (the ssh control's Banner names
// /etc/issue.net) and every session after login. Debian and Ubuntu ship
// all three naming the distribution and its version.
var BannerFiles = []string{"/etc/issue", "/etc/issue.net", "/etc/motd"}

var bannerMeta = provision.Meta{
	ID:    "baseline.banner",
	Title: "Legal notice on the console, SSH and after login, disclosing no OS or version",
	Rows:  []string{"SOC2:CC6"},
}

// Banner is the control baseline.banner (policy baseline.banner).
type Banner struct{ Text string }

func (*Banner) Meta() provision.Meta { return bannerMeta }

// Render is each file's content: the policy's text, one final newline.
func (b *Banner) Render() []byte { return []byte(strings.TrimRight(b.Text, "\n") + "\n") }

func (b *Banner) validate() error {
	switch {
	case strings.TrimSpace(b.Text) == "":
		return fmt.Errorf("baseline.banner: policy baseline.banner is empty")
	case strings.Contains(b.Text, `\`):
		return fmt.Errorf("baseline.banner: policy baseline.banner contains a backslash, which getty expands (\\S is the OS name)")
	}
	return nil
}

// Apply writes the notice to each file.
func (b *Banner) Apply(ctx context.Context, h host.Host) error {
	if err := b.validate(); err != nil {
		return err
	}
	for _, p := range BannerFiles {
		if err := h.WriteFile(p, b.Render(), 0o644); err != nil {
			return bannerMeta.Wrap("write "+p, err)
		}
	}
	return nil
}

// Verify checks each file holds exactly the notice: a package upgrade that
// puts back "Debian GNU/Linux 13 \n \l" fails it.
func (b *Banner) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	for _, p := range BannerFiles {
		out = append(out, check.File(bannerMeta, h, p, b.Render()))
	}
	return check.Timed(out, start)
}
