// Package backup writes and restores one consistent archive of transferd's
// database and file blobs (SOC 2 A1.2, SOX "Backup Mechanisms").
//
// Consistency: a REPEATABLE READ transaction exports its snapshot; pg_dump
// dumps exactly that snapshot and the blobs copied are exactly the files
// rows that snapshot sees (blobs are immutable, so their content cannot
// drift). Every member's SHA-256 goes into manifest.json, written last; a
// restore checks the manifest and every blob's recorded hash before it
// touches the target database or data dir.
package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// Manifest is the archive's table of contents.
type Manifest struct {
	Version   int               `json:"version"`
	CreatedAt time.Time         `json:"created_at"`
	Members   map[string]string `json:"members"` // name -> sha256 hex
}

// Tools names pg_dump and pg_restore (the server's major version).
type Tools struct{ PGDump, PGRestore string }

// DefaultTools uses the Debian wrappers on PATH.
var DefaultTools = Tools{PGDump: "pg_dump", PGRestore: "pg_restore"}

// Write archives the database at dsn and the blobs under dataDir to w.
func Write(ctx context.Context, tools Tools, dsn, dataDir string, w io.Writer) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("backup: connect: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("backup: begin snapshot: %w", err)
	}
	defer tx.Rollback(context.Background())
	var snap string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		return fmt.Errorf("backup: export snapshot: %w", err)
	}
	rows, err := tx.Query(ctx, "SELECT blob, sha256 FROM files ORDER BY id")
	if err != nil {
		return fmt.Errorf("backup: list files: %w", err)
	}
	blobs := map[string][]byte{}
	var order []string
	for rows.Next() {
		var name string
		var sum []byte
		if err := rows.Scan(&name, &sum); err != nil {
			return fmt.Errorf("backup: list files: %w", err)
		}
		blobs[name] = sum
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backup: list files: %w", err)
	}
	dump, err := os.CreateTemp("", "bulwark-dump-*")
	if err != nil {
		return fmt.Errorf("backup: temp dump: %w", err)
	}
	defer os.Remove(dump.Name())
	defer dump.Close()
	cmd := exec.CommandContext(ctx, tools.PGDump, "--format=custom", "--snapshot="+snap, "--dbname="+dsn)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = dump, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("backup: pg_dump: %w: %s", err, stderr.String())
	}
	tw := tar.NewWriter(w)
	man := Manifest{Version: 1, CreatedAt: time.Now().UTC(), Members: map[string]string{}}
	if err := addFile(tw, &man, "db.dump", dump.Name(), nil); err != nil {
		return err
	}
	for _, name := range order {
		if err := addFile(tw, &man, "blobs/"+name, filepath.Join(dataDir, "blobs", name), blobs[name]); err != nil {
			return err
		}
	}
	mj, _ := json.MarshalIndent(man, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o600, Size: int64(len(mj)), ModTime: man.CreatedAt}); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	if _, err := tw.Write(mj); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: finish archive: %w", err)
	}
	return nil
}

// addFile streams one file into the archive, hashing it; a blob whose hash
// differs from its row fails the backup rather than archiving corruption.
func addFile(tw *tar.Writer, man *Manifest, name, path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tw, h), f); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	sum := h.Sum(nil)
	if want != nil && !bytes.Equal(sum, want) {
		return fmt.Errorf("backup: %s: sha256 %x differs from the recorded %x: blob corrupt, backup refused", name, sum, want)
	}
	man.Members[name] = hex.EncodeToString(sum)
	return nil
}
