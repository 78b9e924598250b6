// Package frameworks holds the compliance catalogues the controls map to:
// the SOC 2 and SOX rows of the seed documents, as data (soc2.yaml,
// sox.yaml), embedded and loaded strictly.
package frameworks

// Responsibility says who must satisfy a row, as the seed text says.
type Responsibility string

const (
	Customer Responsibility = "customer"
	Shared   Responsibility = "shared"
	Product  Responsibility = "product"
)

// Row is one row of a framework table.
type Row struct {
	// Ref is the row's reference: "CC6", "A1.2", "PI1.1–PI1.5" for SOC 2;
	// the control area ("Network Security") for SOX.
	Ref string `yaml:"ref"`
	// Title is the category/criteria title (SOC 2) or the control area (SOX).
	Title string `yaml:"title"`
	// Group is the SOC 2 criteria group ("Security (Common Criteria)") or
	// the SOX domain ("Logical Security").
	Group          string         `yaml:"group"`
	Responsibility Responsibility `yaml:"responsibility"`
	// Capability is the seed's capability text for the row, verbatim.
	Capability string `yaml:"capability"`
}

// Catalogue is one framework.
type Catalogue struct {
	// ID prefixes row references in control mappings: "SOC2" or "SOX".
	ID     string `yaml:"id"`
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	Rows   []Row  `yaml:"rows"`
}

// Key is how controls name a row: "SOC2:CC6", "SOX:Network Security".
func (c *Catalogue) Key(r Row) string { return c.ID + ":" + r.Ref }
