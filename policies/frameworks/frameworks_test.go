package frameworks

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	cats, err := Load()
	if err != nil {
		t.Fatalf("embedded catalogues do not load: %v", err)
	}
	want := []struct {
		id   string
		rows int
	}{{"SOC2", 17}, {"SOX", 19}}
	if len(cats) != len(want) {
		t.Fatalf("got %d catalogues, want %d", len(cats), len(want))
	}
	for i, w := range want {
		if cats[i].ID != w.id || len(cats[i].Rows) != w.rows {
			t.Errorf("catalogue %d: got %s with %d rows, want %s with %d", i, cats[i].ID, len(cats[i].Rows), w.id, w.rows)
		}
	}
}

func TestLookup(t *testing.T) {
	cats, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		found   bool
		catalog string
		resp    Responsibility
	}{
		{"SOC2:CC6", true, "SOC2", Shared},
		{"SOC2:CC1", true, "SOC2", Customer},
		{"SOC2:C1.2", true, "SOC2", Product},
		{"SOC2:PI1.1–PI1.5", true, "SOC2", Product},
		{"SOC2:P1–P8", true, "SOC2", Customer},
		{"SOX:Network Security", true, "SOX", Product},
		{"SOX:Backup Mechanisms", true, "SOX", Shared},
		{"SOX:Disaster Recovery", true, "SOX", Customer},
		{"SOC2:CC10", false, "", ""},
		{"SOX:network security", false, "", ""}, // refs are exact
		{"SOC2", false, "", ""},
		{"ISO27001:A.5", false, "", ""},
		{"SOX:CC6", false, "", ""}, // a ref of the other catalogue
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c, r, ok := Lookup(cats, tt.key)
			if ok != tt.found {
				t.Fatalf("found = %v, want %v", ok, tt.found)
			}
			if !ok {
				return
			}
			if c.ID != tt.catalog || r.Responsibility != tt.resp || c.Key(r) != tt.key {
				t.Errorf("got %s %+v", c.ID, r)
			}
		})
	}
}

// TestParseBad: the catalogues are loaded as strictly as the policy.
func TestParseBad(t *testing.T) {
	const row = "  - ref: CC1\n    title: T\n    group: G\n    responsibility: customer\n    capability: C\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "id: X\nname: N\nrows:\n" + row + "    owner: me\n", "unknown field \"owner\""},
		{"duplicate key", "id: X\nid: Y\nname: N\nrows:\n" + row, "mapping key \"id\" already defined"},
		{"wrong type", "id: X\nname: N\nrows: many\n", "rows"},
		{"duplicate ref", "id: X\nname: N\nrows:\n" + row + row, "rows[1]: duplicate ref \"CC1\" (also rows[0])"},
		{"bad responsibility", "id: X\nname: N\nrows:\n" + strings.Replace(row, "customer", "vendor", 1), "responsibility \"vendor\" is not one of"},
		{"empty fields", "id: X\nname: N\nrows:\n  - ref: CC1\n    responsibility: shared\n", "empty title, group, capability"},
		{"bad id", "id: \"SOC 2\"\nname: N\nrows:\n" + row, "id \"SOC 2\""},
		{"no rows", "id: X\nname: N\n", "no rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "t.yaml") {
				t.Errorf("error %q does not name t.yaml and %q", err, tt.want)
			}
		})
	}
}
