package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// member is one file in the OVA: in memory (body) or on disk (path).
type member struct {
	name string
	body []byte
	path string
}

// sum is a member's name and the SHA-256 of the bytes that went into the tar.
type sum struct{ name, sha256 string }

// mf is the OVA's .mf manifest: one "SHA256(file)= hex" line per member
// before it, which ovftool and VirtualBox check on import.
func mf(sums []sum) []byte {
	var b strings.Builder
	for _, s := range sums {
		fmt.Fprintf(&b, "SHA256(%s)= %s\n", s.name, s.sha256)
	}
	return []byte(b.String())
}

// writeOVA writes the tar at path: the .ovf, the disk, then the .mf built
// from those two. The order is the OVF spec's (1.x and 2.0, "OVF package
// as a single file"): the descriptor first so an importer can read it
// before the disks stream past; the manifest after the files it hashes.
// The hashes are taken from the bytes as they go into the tar, so the .mf
// cannot disagree with the members. Headers are plain USTAR, which every
// importer reads; archive/tar moves to PAX by itself only for a member of
// 8 GiB or more.
func writeOVA(path string, ovf, disk member, mtime time.Time) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("ova: %w", cerr)
		}
	}()
	tw := tar.NewWriter(f)
	var sums []sum
	for _, m := range []member{ovf, disk} {
		s, err := addMember(tw, m, mtime)
		if err != nil {
			return fmt.Errorf("ova: add %s: %w", m.name, err)
		}
		sums = append(sums, sum{m.name, s})
	}
	manifest := member{name: strings.TrimSuffix(ovf.name, ".ovf") + ".mf", body: mf(sums)}
	if _, err := addMember(tw, manifest, mtime); err != nil {
		return fmt.Errorf("ova: add %s: %w", manifest.name, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	return nil
}

// addMember writes one member and returns the hex SHA-256 of its bytes.
func addMember(tw *tar.Writer, m member, mtime time.Time) (string, error) {
	var r io.Reader = bytes.NewReader(m.body)
	size := int64(len(m.body))
	if m.path != "" {
		f, err := os.Open(m.path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return "", err
		}
		r, size = f, st.Size()
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: size, Mode: 0o644, ModTime: mtime.Truncate(time.Second)}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), r)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("copied %d of %d bytes (file changed while writing)", n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
