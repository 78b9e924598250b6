//go:build linux

package firewall

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// snapshotTable is the family's Snapshot (provision.Family): it saves `nft list table` to a file beside the journal and
// records how to load it back; the leading "table; delete table" makes the
// reload replace only our table, atomically, as the persisted ruleset file does.
func snapshotTable(ctx context.Context, h *host.Local, j *host.Journal, p *policies.Policy) error {
	table := p.Network.Table
	tables, err := h.Query(ctx, "nft", "list", "tables")
	if err != nil {
		return fmt.Errorf("firewall: snapshot ruleset: %w", err)
	}
	if !hasTable(string(tables), table) {
		return j.RecordUndo("remove table inet "+table+" (absent before apply)",
			[]string{"nft", "delete", "table", "inet", table})
	}
	cur, err := h.Query(ctx, "nft", "-s", "list", "table", "inet", table)
	if err != nil {
		return fmt.Errorf("firewall: snapshot table inet %s: %w", table, err)
	}
	file := path.Join(host.JournalDir, j.ID()+".firewall.nft")
	text := fmt.Sprintf("table inet %s\ndelete table inet %s\n%s", table, table, cur)
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return fmt.Errorf("firewall: save snapshot %s: %w", file, err)
	}
	// Pre-flight the undo itself: a listing nft cannot read back (dynamic
	// set elements with expiry, say) falls back to the persisted ruleset file,
	// which the journal restores just before this undo runs.
	if _, err := h.Query(ctx, "nft", "-c", "-f", file); err != nil {
		return j.RecordUndo("restore table inet "+table+" from the restored "+RulesetPath+" (live listing did not check: "+err.Error()+")",
			[]string{"nft", "-f", RulesetPath})
	}
	return j.RecordUndo("restore table inet "+table+" as it was before apply", []string{"nft", "-f", file})
}

func hasTable(list, table string) bool {
	for _, l := range strings.Split(list, "\n") {
		if strings.TrimSpace(l) == "table inet "+table {
			return true
		}
	}
	return false
}
