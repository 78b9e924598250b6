//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// newUseraddCmd is `transferd useradd`: it bootstraps accounts (the first
// sysadmin has nobody to create it through the API). The password is read
// from stdin, never argv.
func newUseraddCmd(d *daemonFlags) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "useradd USERNAME",
		Short: "create a local account; password on stdin, TOTP secret printed for admins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := d.loadPolicy(); err != nil {
				return err
			}
			if !auth.ValidRole(role) {
				return exitcode.UsageError(fmt.Errorf("--role %q: want sysadmin, admin or user", role))
			}
			pw, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && pw == "" {
				return exitcode.UsageError(fmt.Errorf("read password from stdin: %w", err))
			}
			pw = strings.TrimRight(pw, "\r\n")
			strength, err := auth.NewStrength(d.opts.Policy.Passwords)
			if err != nil {
				return err
			}
			if err := strength.Check(pw); err != nil {
				return exitcode.UsageError(err)
			}
			return addUser(cmd, d, args[0], role, pw)
		},
	}
	cmd.Flags().StringVar(&role, "role", "user", "sysadmin, admin or user")
	return cmd
}

func addUser(cmd *cobra.Command, d *daemonFlags, name, role, pw string) error {
	ctx := context.Background()
	st, err := store.Open(ctx, d.opts.DB, d.opts.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	hash, err := auth.HashPassword(pw, 12)
	if err != nil {
		return err
	}
	u := &store.User{Username: name, PasswordHash: hash, Role: role}
	var url string
	if auth.IsAdmin(role) {
		if u.TOTPSecret, url, err = auth.NewTOTP("bulwark", name); err != nil {
			return err
		}
	}
	if err := st.CreateUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "created %s (%s)\n", name, role)
	if url != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "TOTP enrolment (scan as QR code): %s\n", url)
	}
	return nil
}
