package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Restore unpacks an archive into an empty database and an empty data dir.
// It verifies every member against the manifest before changing anything;
// then pg_restore runs in a single transaction, blobs are renamed into
// place, and every files row is checked against its blob.
func Restore(ctx context.Context, tools Tools, dsn, dataDir string, r io.Reader) error {
	if err := checkEmpty(ctx, dsn, dataDir); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return fmt.Errorf("restore: staging dir in %s: %w", dataDir, err)
	}
	defer os.RemoveAll(stage)
	got, man, err := unpack(r, stage)
	if err != nil {
		return err
	}
	if err := verify(got, man); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, tools.PGRestore, "--single-transaction", "--exit-on-error", "--no-owner",
		"--dbname="+dsn, filepath.Join(stage, "db.dump"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restore: pg_restore: %w: %s", err, stderr.String())
	}
	blobs := filepath.Join(dataDir, "blobs")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for name := range got {
		if strings.HasPrefix(name, "blobs/") {
			if err := os.Rename(filepath.Join(stage, name), filepath.Join(blobs, path.Base(name))); err != nil {
				return fmt.Errorf("restore: place %s: %w", name, err)
			}
		}
	}
	return checkRows(ctx, dsn, got)
}

// checkEmpty refuses to restore over live data.
func checkEmpty(ctx context.Context, dsn, dataDir string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("restore: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname='public'").Scan(&n); err != nil {
		return fmt.Errorf("restore: inspect target: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("restore: target database already has %d tables; restore only into an empty database", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(dataDir, "blobs")); len(ents) > 0 {
		return fmt.Errorf("restore: %s/blobs is not empty", dataDir)
	}
	return nil
}

// unpack stages members, hashing them; only db.dump, blobs/<hex> and
// manifest.json are accepted (no paths out of the stage).
func unpack(r io.Reader, stage string) (map[string]string, *Manifest, error) {
	if err := os.Mkdir(filepath.Join(stage, "blobs"), 0o700); err != nil {
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	tr := tar.NewReader(r)
	got := map[string]string{}
	var man *Manifest
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("restore: read archive: %w", err)
		}
		switch {
		case h.Name == "manifest.json":
			man = &Manifest{}
			if err := json.NewDecoder(io.LimitReader(tr, 64<<20)).Decode(man); err != nil {
				return nil, nil, fmt.Errorf("restore: manifest.json: %w", err)
			}
		case h.Name == "db.dump" || validBlobMember(h.Name):
			sum, err := stageFile(tr, filepath.Join(stage, h.Name))
			if err != nil {
				return nil, nil, err
			}
			got[h.Name] = sum
		default:
			return nil, nil, fmt.Errorf("restore: unexpected archive member %q", h.Name)
		}
	}
	if man == nil {
		return nil, nil, errors.New("restore: archive has no manifest.json (truncated?)")
	}
	return got, man, nil
}

func validBlobMember(name string) bool {
	base, ok := strings.CutPrefix(name, "blobs/")
	if !ok || len(base) != 32 {
		return false
	}
	_, err := hex.DecodeString(base)
	return err == nil
}

func stageFile(r io.Reader, dst string) (string, error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("restore: stage %s: %w", dst, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return "", fmt.Errorf("restore: stage %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("restore: fsync %s: %w", dst, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func verify(got map[string]string, man *Manifest) error {
	if len(got) != len(man.Members) {
		return fmt.Errorf("restore: archive has %d members, manifest lists %d", len(got), len(man.Members))
	}
	for name, want := range man.Members {
		if got[name] != want {
			return fmt.Errorf("restore: %s: sha256 %s, manifest says %s: archive corrupt, nothing restored", name, got[name], want)
		}
	}
	return nil
}

// checkRows proves every restored files row has its blob with the hash
// recorded at upload.
func checkRows(ctx context.Context, dsn string, got map[string]string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("restore: verify: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT blob, sha256 FROM files")
	if err != nil {
		return fmt.Errorf("restore: verify: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var sum []byte
		if err := rows.Scan(&name, &sum); err != nil {
			return fmt.Errorf("restore: verify: %w", err)
		}
		if got["blobs/"+name] != hex.EncodeToString(sum) {
			return fmt.Errorf("restore: verify: file blob %s missing or not matching its recorded sha256", name)
		}
	}
	return rows.Err()
}
