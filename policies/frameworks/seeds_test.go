package frameworks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The seed documents are the requirement text; testdata/seeds holds a copy
// so the test runs from a clone without the shared directory.

// seedRow is one row of a markdown table in a seed document.
type seedRow struct {
	group string
	cells []string // whitespace-normalised
}

// parseSeed reads every markdown table of a seed document. A table row may
// continue over several lines (the seed's CC6 row does): it ends when it
// has as many cells as the header and closes with "|". A table's group is
// the nearest heading above it: the last line that is not a sentence (does
// not end with ".") and not a bullet.
func parseSeed(t *testing.T, text string) []seedRow {
	t.Helper()
	var rows []seedRow
	var group, buf string
	cols := 0
	var prose []string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case cols == 0 && (strings.HasPrefix(line, "| Ref |") || strings.HasPrefix(line, "| Control Area |")):
			cols = strings.Count(line, "|") - 1
			group = heading(prose)
		case cols == 0:
			prose = append(prose, line)
		case strings.HasPrefix(line, "|---"):
		case buf == "" && !strings.HasPrefix(line, "|"):
			cols, prose = 0, []string{line}
		default:
			buf = strings.TrimSpace(buf + " " + line)
			cells := splitRow(buf)
			if strings.HasSuffix(buf, "|") && len(cells) == cols {
				rows = append(rows, seedRow{group: group, cells: cells})
				buf = ""
			}
		}
	}
	if buf != "" {
		t.Fatalf("unterminated table row: %q", buf)
	}
	return rows
}

func heading(prose []string) string {
	for i := len(prose) - 1; i >= 0; i-- {
		l := strings.TrimSpace(prose[i])
		if l != "" && !strings.HasSuffix(l, ".") && !strings.HasPrefix(l, "-") {
			return l
		}
	}
	return ""
}

func splitRow(s string) []string {
	raw := strings.Split(strings.Trim(s, "|"), "|")
	out := make([]string, len(raw))
	for i, c := range raw {
		out[i] = strings.Join(strings.Fields(c), " ")
	}
	return out
}

// responsibility applies the rule the catalogues follow to a capability text.
func responsibility(ref, capability string) Responsibility {
	if ref == "CC6" { // logical access is product, physical is customer
		return Shared
	}
	for _, r := range []struct {
		prefix string
		resp   Responsibility
	}{{"Customer responsibility.", Customer}, {"Shared responsibility.", Shared}, {"Mostly customer responsibility", Customer}} {
		if strings.HasPrefix(capability, r.prefix) {
			return r.resp
		}
	}
	return Product
}

// TestSeedRows proves every seed row is in the catalogue with the same
// title, group and capability text, in the seed's order, and that the
// catalogue invents no row.
func TestSeedRows(t *testing.T) {
	cats, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		seed string
		cat  *Catalogue
		min  int // a parser that finds nothing must not pass
	}{
		{"soc2-mapping.txt", cats[0], 17},
		{"sox-mapping.txt", cats[1], 19},
	}
	for _, tt := range tests {
		t.Run(tt.cat.ID, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", "seeds", tt.seed))
			if err != nil {
				t.Fatal(err)
			}
			seed := parseSeed(t, string(text))
			if len(seed) < tt.min {
				t.Fatalf("parsed %d rows from %s, want at least %d", len(seed), tt.seed, tt.min)
			}
			var want []Row
			for _, s := range seed {
				want = append(want, seedToRow(tt.cat.ID, s))
			}
			for _, p := range compareRows(want, tt.cat.Rows) {
				t.Error(p)
			}
		})
	}
}

func seedToRow(id string, s seedRow) Row {
	r := Row{Group: s.group}
	if id == "SOX" { // | Control Area | Capability |
		r.Ref, r.Title, r.Capability = s.cells[0], s.cells[0], s.cells[1]
	} else { // | Ref | Category | Capability |
		r.Ref, r.Title, r.Capability = s.cells[0], s.cells[1], s.cells[2]
	}
	r.Responsibility = responsibility(r.Ref, r.Capability)
	return r
}

// compareRows lists how got departs from the seed rows in want.
func compareRows(want, got []Row) []string {
	var problems []string
	gotByRef := map[string]Row{}
	for _, r := range got {
		gotByRef[r.Ref] = r
	}
	wantRefs := map[string]bool{}
	for i, w := range want {
		wantRefs[w.Ref] = true
		g, ok := gotByRef[w.Ref]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("seed row %q is missing from the catalogue", w.Ref))
		case g != w:
			problems = append(problems, fmt.Sprintf("row %q differs from the seed:\n got %+v\nwant %+v", w.Ref, g, w))
		case i >= len(got) || got[i].Ref != w.Ref:
			problems = append(problems, fmt.Sprintf("row %q is out of the seed's order", w.Ref))
		}
	}
	for _, g := range got {
		if !wantRefs[g.Ref] {
			problems = append(problems, fmt.Sprintf("catalogue row %q is not in the seed (invented)", g.Ref))
		}
	}
	return problems
}

// TestSeedCopies: testdata/seeds must be the shared requirement text when
// the shared directory is present (it is not in a bare clone).
func TestSeedCopies(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "seeds")
	if _, err := os.Stat(shared); err != nil {
		t.Logf("no shared seeds at %s: the testdata copies are authoritative", shared)
		return
	}
	for _, name := range []string{"soc2-mapping.txt", "sox-mapping.txt"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "seeds", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/seeds/%s differs from %s; copy it again", name, filepath.Join(shared, name))
		}
	}
}

// TestSeedParserBites: a catalogue edited away from the seed is caught.
func TestSeedParserBites(t *testing.T) {
	want := []Row{{Ref: "CC1", Title: "T", Group: "G", Responsibility: Customer, Capability: "C"}}
	tests := []struct {
		name string
		got  []Row
	}{
		{"missing", nil},
		{"invented", append(append([]Row{}, want...), Row{Ref: "CC10"})},
		{"text changed", []Row{{Ref: "CC1", Title: "T", Group: "G", Responsibility: Customer, Capability: "C!"}}},
		{"responsibility changed", []Row{{Ref: "CC1", Title: "T", Group: "G", Responsibility: Product, Capability: "C"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(compareRows(want, tt.got)) == 0 {
				t.Errorf("compareRows accepted a catalogue that is %s", tt.name)
			}
		})
	}
}
