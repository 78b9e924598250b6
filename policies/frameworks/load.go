package frameworks

import (
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
)

// files are the catalogues in the order Load returns them: SOC 2 first.
var files = []string{"soc2.yaml", "sox.yaml"}

//go:embed soc2.yaml sox.yaml
var embedded embed.FS

// Load decodes the embedded catalogues strictly (unknown keys, wrong types
// and duplicate keys are errors) and checks every row: required fields set,
// a known responsibility, no reference twice. It returns SOC 2, then SOX.
func Load() ([]*Catalogue, error) {
	var out []*Catalogue
	for _, name := range files {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("frameworks: read embedded %s: %w", name, err)
		}
		c, err := Parse(name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Parse decodes and checks one catalogue; name is how errors refer to it.
func Parse(name string, data []byte) (*Catalogue, error) {
	var c Catalogue
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("frameworks: %s: %s", name, yaml.FormatError(err, false, true))
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("frameworks: %s: %w", name, err)
	}
	return &c, nil
}

// check collects every problem, so a bad edit is fixed in one pass.
func (c *Catalogue) check() error {
	var errs []error
	if c.ID == "" || strings.ContainsAny(c.ID, ": ") {
		errs = append(errs, fmt.Errorf("id %q: want a short prefix without ':' or spaces, e.g. SOC2", c.ID))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if len(c.Rows) == 0 {
		errs = append(errs, errors.New("no rows"))
	}
	seen := map[string]int{}
	for i, r := range c.Rows {
		if err := r.check(); err != nil {
			errs = append(errs, fmt.Errorf("rows[%d] (ref %q): %w", i, r.Ref, err))
		}
		if j, dup := seen[r.Ref]; dup {
			errs = append(errs, fmt.Errorf("rows[%d]: duplicate ref %q (also rows[%d]); a control mapping would be ambiguous", i, r.Ref, j))
		}
		seen[r.Ref] = i
	}
	return errors.Join(errs...)
}

func (r Row) check() error {
	var missing []string
	for _, f := range []struct{ name, val string }{
		{"ref", r.Ref}, {"title", r.Title}, {"group", r.Group}, {"capability", r.Capability},
	} {
		if strings.TrimSpace(f.val) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("empty %s", strings.Join(missing, ", "))
	}
	switch r.Responsibility {
	case Customer, Shared, Product:
		return nil
	}
	return fmt.Errorf("responsibility %q is not one of customer, shared, product", r.Responsibility)
}

// Lookup finds a row by its key, "SOC2:CC6" or "SOX:Network Security".
func Lookup(cats []*Catalogue, key string) (*Catalogue, Row, bool) {
	id, ref, ok := strings.Cut(key, ":")
	if !ok {
		return nil, Row{}, false
	}
	for _, c := range cats {
		if c.ID != id {
			continue
		}
		for _, r := range c.Rows {
			if r.Ref == ref {
				return c, r, true
			}
		}
	}
	return nil, Row{}, false
}
