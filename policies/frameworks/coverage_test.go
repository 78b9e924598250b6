package frameworks

import (
	"strings"
	"testing"
)

func TestCover(t *testing.T) {
	cats, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mappings []Mapping
		key      string   // a row to inspect
		want     []string // its controls
		err      string   // substring of the expected error
	}{
		{"nothing registered", nil, "SOC2:CC6", nil, ""},
		{"two controls on one row, sorted", []Mapping{
			{ID: "ssh.daemon", Rows: []string{"SOC2:CC6", "SOX:Privileged Access"}},
			{ID: "firewall.ruleset", Rows: []string{"SOC2:CC6", "SOX:Network Security"}},
		}, "SOC2:CC6", []string{"firewall.ruleset", "ssh.daemon"}, ""},
		{"unknown row", []Mapping{{ID: "ssh.daemon", Rows: []string{"SOC2:CC66"}}}, "", nil,
			`control ssh.daemon names row "SOC2:CC66", which no catalogue holds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cov, err := Cover(cats, tt.mappings)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cov) != 17+19 {
				t.Fatalf("got %d rows, want every row (36)", len(cov))
			}
			for _, c := range cov {
				if c.Catalogue.Key(c.Row) == tt.key && strings.Join(c.Controls, ",") != strings.Join(tt.want, ",") {
					t.Errorf("%s covered by %v, want %v", tt.key, c.Controls, tt.want)
				}
			}
		})
	}
}
