package qemu

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// BuildKey is the ed25519 key the harness logs in with. Its public half
// goes into the image's authorized_keys when the disk is built.
type BuildKey struct {
	Signer     ssh.Signer
	Authorized string // authorized_keys line
}

// DefaultKeyPath is where LoadOrCreateKey keeps the build key by default:
// beside the disk cache, because the cached disks trust exactly this key.
func DefaultKeyPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("qemu: no cache dir for the build key: %w", err)
	}
	return filepath.Join(dir, "bulwark", "keys", "build_ed25519"), nil
}

// LoadOrCreateKey reads the private key at path, generating it (mode 0600)
// when missing. The key is kept, not regenerated per run, because the disk
// cache is keyed by the authorized key: a fresh key would rebuild the disk.
func LoadOrCreateKey(path string) (BuildKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = createKey(path)
	}
	if err != nil {
		return BuildKey{}, fmt.Errorf("qemu: build key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return BuildKey{}, fmt.Errorf("qemu: build key %s: %w", path, err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	return BuildKey{Signer: signer, Authorized: line + " bulwark-build-key"}, nil
}

func createKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "bulwark build key")
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Write then link so a concurrent creator never sees half a key, and
	// the first one to land wins (Link fails if path exists).
	tmp, err := os.CreateTemp(filepath.Dir(path), ".build-key-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return os.ReadFile(path)
}
