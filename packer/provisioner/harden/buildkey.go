package harden

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
)

// removeBuildKey takes the build's public key out of the guest's
// authorized_keys, then reads the file back to prove it is gone: an image
// that still trusts the build key is a backdoor, so a silent miss fails.
func (g *guest) removeBuildKey(ctx context.Context) error {
	if g.cfg.RemoveBuildKey == "" {
		return nil
	}
	pub, err := os.ReadFile(g.cfg.RemoveBuildKey)
	if err != nil {
		return fmt.Errorf("remove_build_key: %w", err)
	}
	key := keyMaterial(string(pub))
	if key == "" {
		return fmt.Errorf("remove_build_key: %s holds no public key", g.cfg.RemoveBuildKey)
	}
	file := g.cfg.AuthorizedKeysFile
	var cur bytes.Buffer
	if err := g.comm.Download(file, &cur); err != nil {
		return fmt.Errorf("download %s: %w", file, err)
	}
	kept, removed := withoutKey(cur.String(), key)
	if removed == 0 {
		g.ui.Say(fmt.Sprintf("Build key not in %s; nothing to remove", file))
		return nil
	}
	if err := g.comm.Upload(file, strings.NewReader(kept), nil); err != nil {
		return fmt.Errorf("upload %s: %w", file, err)
	}
	if err := g.run(ctx, "chmod 0600 "+shellQuote(file), false); err != nil {
		return err
	}
	var after bytes.Buffer
	if err := g.comm.Download(file, &after); err != nil {
		return fmt.Errorf("re-read %s: %w", file, err)
	}
	if _, left := withoutKey(after.String(), key); left > 0 {
		return fmt.Errorf("build key still in %s after removal", file)
	}
	g.ui.Say(fmt.Sprintf("Removed the build key from %s", file))
	return nil
}

// keyMaterial is the base64 blob of the first key in an OpenSSH public
// key file: lines match on it, whatever their options or comments.
func keyMaterial(pub string) string {
	for _, line := range strings.Split(pub, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			return f[1]
		}
	}
	return ""
}

// withoutKey drops every authorized_keys line carrying key.
func withoutKey(authorized, key string) (string, int) {
	var out []string
	removed := 0
	for _, line := range strings.SplitAfter(authorized, "\n") {
		if hasKey(line, key) {
			removed++
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, ""), removed
}

func hasKey(line, key string) bool {
	for _, f := range strings.Fields(line) {
		if f == key {
			return true
		}
	}
	return false
}
