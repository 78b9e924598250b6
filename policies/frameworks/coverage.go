package frameworks

import (
	"fmt"
	"sort"
	"strings"
)

// Mapping is what one control claims: its ID and the row keys it serves
// ("SOC2:CC6", "SOX:Network Security"). Callers build it from
// provision.Control, which this package does not import: the catalogues
// are data and know nothing of the controls.
type Mapping struct {
	ID   string
	Rows []string
}

// Coverage is one catalogue row and the controls that serve it.
type Coverage struct {
	Catalogue *Catalogue
	Row       Row
	Controls  []string // sorted control IDs; empty when nothing covers the row
}

// Cover lists every row of every catalogue, in catalogue order, with the
// controls that name it. A key no catalogue holds is an error naming the
// control and the key, so a typo in a control's Rows cannot silently leave
// a row uncovered.
func Cover(cats []*Catalogue, mappings []Mapping) ([]Coverage, error) {
	byKey := map[string][]string{}
	var unknown []string
	for _, m := range mappings {
		for _, key := range m.Rows {
			if _, _, ok := Lookup(cats, key); !ok {
				unknown = append(unknown, fmt.Sprintf("control %s names row %q, which no catalogue holds", m.ID, key))
				continue
			}
			byKey[key] = append(byKey[key], m.ID)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("frameworks: %s (known keys look like SOC2:CC6 or SOX:Network Security)", strings.Join(unknown, "; "))
	}
	var out []Coverage
	for _, c := range cats {
		for _, r := range c.Rows {
			ids := byKey[c.Key(r)]
			sort.Strings(ids)
			out = append(out, Coverage{Catalogue: c, Row: r, Controls: ids})
		}
	}
	return out, nil
}
