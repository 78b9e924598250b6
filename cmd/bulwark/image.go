//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/images/base"
)

// newImageCmd is `bulwark image` and its subcommands, base and export
// (image_export.go).
func newImageCmd() *cobra.Command {
	img := &cobra.Command{
		Use:   "image",
		Short: "Build the images the appliance is made from",
	}
	img.AddCommand(newImageBaseCmd(), newImageExportCmd())
	return img
}

// newImageBaseCmd is `bulwark image base`.
func newImageBaseCmd() *cobra.Command {
	var outJSON, cache, key string
	b := &cobra.Command{
		Use:   "base [--out-json FILE] [--cache DIR]",
		Short: "Build (or reuse) the Debian base disk the Packer template starts from",
		Long: `base debootstraps the Debian 13 rootfs (cached by its inputs) and turns it
into a bootable qcow2 that trusts the build key, then prints the disk, its
kernel, initrd and kernel command line. With --out-json the same facts go to
FILE as JSON (what 'make image' feeds to packer build). Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := base.ImageOptions{CacheDir: cache, KeyPath: key,
				Progress: func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }}
			return runImageBase(cmd.Context(), cmd.OutOrStdout(), opts, outJSON)
		},
	}
	b.Flags().StringVar(&outJSON, "out-json", "", "also write the result as JSON to `FILE`")
	b.Flags().StringVar(&cache, "cache", "", "cache `DIR` for the rootfs and disks (default ~/.cache/bulwark)")
	b.Flags().StringVar(&key, "build-key", "", "build key `FILE` (default ~/.cache/bulwark/keys/build_ed25519; created when missing)")
	return b
}

func runImageBase(ctx context.Context, w io.Writer, opts base.ImageOptions, outJSON string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	im, err := base.BuildImage(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "disk:    %s\nkernel:  %s\ninitrd:  %s\ncmdline: %s\nkey:     %s\n",
		im.Path, im.Kernel, im.Initrd, im.Cmdline, im.BuildKey)
	if outJSON == "" {
		return nil
	}
	data, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return fmt.Errorf("image base: encode %s: %w", outJSON, err)
	}
	if err := os.WriteFile(outJSON, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("image base: write %s: %w", outJSON, err)
	}
	return nil
}
