package updates

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// needrestart reads needrestart.conf, then conf.d/*.conf in glob order;
// the last assignment wins. Ours sits late so a distribution default
// (interactive 'i', which an unattended run cannot answer) is overridden.
const (
	NeedrestartFile = "/etc/needrestart/conf.d/60-bulwark.conf"
	needrestartMain = "/etc/needrestart/needrestart.conf"
	needrestartDir  = "/etc/needrestart/conf.d"
)

var nrMeta = provision.Meta{
	ID:    "updates.needrestart",
	Title: "Services using updated libraries are restarted automatically",
	Rows:  rows,
}

var nrContent = []byte("# Written by bulwark (control updates.needrestart): restart services\n# still running replaced libraries without asking, so unattended\n# security updates take effect.\n$nrconf{restart} = 'a';\n")

var restartRE = regexp.MustCompile(`(?m)^\s*\$nrconf\{restart\}\s*=\s*'(\w)'`)

// Needrestart is the control updates.needrestart.
type Needrestart struct{}

func (*Needrestart) Meta() provision.Meta { return nrMeta }

// Apply writes the conf.d file (needrestart itself is installed by
// updates.unattended, which runs first).
func (n *Needrestart) Apply(ctx context.Context, h host.Host) error {
	return nrMeta.Wrap("write "+NeedrestartFile, h.WriteFile(NeedrestartFile, nrContent, 0o644))
}

// Verify checks our file and the effective mode across every file
// needrestart reads.
func (n *Needrestart) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(nrMeta, h, NeedrestartFile, nrContent), effectiveRestart(h)}
	return check.Timed(out, start)
}

func effectiveRestart(h host.Host) provision.Finding {
	f := nrMeta.Finding("effective $nrconf{restart}", "a (automatic)")
	files := []string{needrestartMain}
	entries, err := host.ReadDir(h, needrestartDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: needrestartDir, Read: err.Error()})
	}
	// ReadDir sorts by name: needrestart reads conf.d in that order too.
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") {
			files = append(files, path.Join(needrestartDir, e.Name()))
		}
	}
	mode, from := "", "(default: interactive)"
	for _, p := range files {
		b, err := h.ReadFile(p)
		if err != nil {
			continue // needrestart skips unreadable files too
		}
		for _, m := range restartRE.FindAllSubmatch(b, -1) {
			mode, from = string(m[1]), p
		}
	}
	ev := provision.Evidence{Source: from, Read: "$nrconf{restart} = '" + mode + "'"}
	if mode != "a" {
		return check.Fail(f, mode, "needrestart would not restart services by itself: "+from+" sets the mode last", ev)
	}
	return check.Pass(f, mode, ev)
}
