package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// newControlsCmd is `bulwark controls`.
func newControlsCmd(g *rootFlags) *cobra.Command {
	var format string
	var rows bool
	cmd := &cobra.Command{
		Use:   "controls",
		Short: "List the enabled controls and the SOC 2 / SOX rows they serve",
		Long: `controls lists every control the policy enables, with the SOC 2 and SOX
rows each one serves. --rows turns it around: every catalogue row, who is
responsible for it, and which controls cover it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return exitcode.UsageError(fmt.Errorf("controls: --format %q: want table or json", format))
			}
			p, err := g.loadPolicy()
			if err != nil {
				return err
			}
			cats, err := frameworks.Load()
			if err != nil {
				return err
			}
			ctrls := g.controls(p)
			if rows {
				return printRows(cmd.OutOrStdout(), format, cats, ctrls)
			}
			return printControls(cmd.OutOrStdout(), format, cats, ctrls)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output `FORMAT`: table or json")
	cmd.Flags().BoolVar(&rows, "rows", false, "list the catalogue rows and the controls covering each")
	return cmd
}

// controlView is one control as printed; the JSON tags are stable.
type controlView struct {
	ID    string   `json:"id"`
	Title string   `json:"title"`
	SOC2  []string `json:"soc2"`
	SOX   []string `json:"sox"`
}

func printControls(w io.Writer, format string, cats []*frameworks.Catalogue, ctrls []provision.Control) error {
	views := make([]controlView, 0, len(ctrls))
	for _, c := range ctrls {
		m := c.Meta()
		v := controlView{ID: m.ID, Title: m.Title, SOC2: []string{}, SOX: []string{}}
		for _, key := range m.Rows {
			cat, row, ok := frameworks.Lookup(cats, key)
			switch {
			case !ok:
				return fmt.Errorf("controls: control %s names row %q, which no catalogue holds", m.ID, key)
			case cat.ID == "SOC2":
				v.SOC2 = append(v.SOC2, row.Ref)
			case cat.ID == "SOX":
				v.SOX = append(v.SOX, row.Ref)
			}
		}
		views = append(views, v)
	}
	if format == "json" {
		return writeJSON(w, views)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTITLE\tSOC 2\tSOX")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.ID, v.Title, dash(v.SOC2), dash(v.SOX))
	}
	return tw.Flush()
}

// rowView is one catalogue row as printed by --rows.
type rowView struct {
	Framework      string   `json:"framework"`
	Ref            string   `json:"ref"`
	Title          string   `json:"title"`
	Group          string   `json:"group"`
	Responsibility string   `json:"responsibility"`
	Controls       []string `json:"controls"`
}

func printRows(w io.Writer, format string, cats []*frameworks.Catalogue, ctrls []provision.Control) error {
	mappings := make([]frameworks.Mapping, 0, len(ctrls))
	for _, c := range ctrls {
		mappings = append(mappings, frameworks.Mapping{ID: c.Meta().ID, Rows: c.Meta().Rows})
	}
	cov, err := frameworks.Cover(cats, mappings)
	if err != nil {
		return fmt.Errorf("controls: %w", err)
	}
	views := make([]rowView, 0, len(cov))
	for _, c := range cov {
		views = append(views, rowView{Framework: c.Catalogue.ID, Ref: c.Row.Ref, Title: c.Row.Title, Group: c.Row.Group,
			Responsibility: string(c.Row.Responsibility), Controls: append([]string{}, c.Controls...)})
	}
	if format == "json" {
		return writeJSON(w, views)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FRAMEWORK\tREF\tTITLE\tRESPONSIBILITY\tCONTROLS")
	for _, v := range views {
		title := v.Title
		if title == v.Ref { // SOX rows: the control area is both
			title = v.Group
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Framework, v.Ref, title, v.Responsibility, dash(v.Controls))
	}
	return tw.Flush()
}

func dash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

// writeJSON writes v indented: the control list, or verify's results as
// `bulwark evidence` reads them.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
