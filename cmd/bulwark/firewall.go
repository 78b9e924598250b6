package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/provision/firewall"
)

// newFirewallCmd is `bulwark firewall` and its one subcommand, show.
func newFirewallCmd(g *rootFlags) *cobra.Command {
	var live bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the firewall ruleset in nft syntax",
		Long: `Print the ruleset rendered from the policy, exactly as persisted in
` + firewall.RulesetPath + ` and loaded at boot. With --live, read table inet
<network.table> back from the kernel through netlink instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPolicy()
			if err != nil {
				return err
			}
			fw := firewall.New(p.Network, firewall.Options{})
			rs, err := fw.Ruleset()
			if err != nil {
				return exitcode.UsageError(err)
			}
			text := rs.Text()
			if live {
				if text, err = fw.LiveText(); err != nil {
					return err
				}
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), text)
			return err
		},
	}
	show.Flags().BoolVar(&live, "live", false, "print the live table read back through netlink")
	fw := &cobra.Command{Use: "firewall", Short: "Inspect the appliance firewall (nftables)"}
	fw.AddCommand(show)
	return fw
}
