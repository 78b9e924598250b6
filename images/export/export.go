// Package export turns one built appliance disk into every format
// customers import: qcow2, raw, a streamOptimized VMDK with an OVA around
// it, and a fixed VHD, each listed with its size and SHA-256 in a
// manifest.json. Conversions are qemu-img's; this package decides the
// options each platform needs, writes the OVF descriptor, and makes sure a
// failed run leaves nothing half-written behind.
package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options tune Export; the zero value is usable.
type Options struct {
	// Name is the base of every file name (NAME.qcow2, NAME.ova, …) and
	// the OVF's VM name. Default: the input's name without its extension.
	Name    string
	Machine Machine // the OVF's virtual hardware; defaults in Machine
	// Progress gets one line per step; nil discards them.
	Progress io.Writer
	// QemuImg is the qemu-img binary (default "qemu-img" on PATH).
	QemuImg string
}

// Manifest is manifest.json: what was exported from which source.
type Manifest struct {
	Name        string `json:"name"`
	Source      string `json:"source"`        // input file's base name
	SourceFmt   string `json:"source_format"` // qcow2 or raw
	VirtualSize int64  `json:"virtual_size"`  // bytes
	Files       []File `json:"files"`
}

// File is one exported artifact.
type File struct {
	Format string `json:"format"` // qcow2, raw, vmdk, vhd, ova
	Name   string `json:"file"`   // base name, in the manifest's directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// VirtualSize is the disk's size as the guest sees it; the VHD's is
	// rounded up to a whole MiB. Zero for the OVA (a package, not a disk).
	VirtualSize int64    `json:"virtual_size,omitempty"`
	Platforms   []string `json:"platforms"`
}

// ManifestName is the manifest's file name in the output directory.
const ManifestName = "manifest.json"

// Export writes every format of the disk image at in (qcow2 or raw) into
// outDir, plus manifest.json, and returns the manifest. The work happens in
// a temporary directory inside outDir; files are renamed into place only
// once all of them are complete, so a failure leaves outDir as it was.
// Existing files of the same names are replaced, in (including in itself
// when it sits in outDir under the qcow2's name).
func Export(ctx context.Context, in, outDir string, opts Options) (Manifest, error) {
	e, err := newExporter(in, opts)
	if err != nil {
		return Manifest{}, err
	}
	return e.run(ctx, outDir)
}

type exporter struct {
	in      string
	name    string
	machine Machine
	q       qemuImg
	w       io.Writer
}

func newExporter(in string, opts Options) (*exporter, error) {
	e := &exporter{in: in, name: opts.Name, machine: opts.Machine.withDefaults(), q: qemuImg{opts.QemuImg}, w: opts.Progress}
	if e.name == "" {
		e.name = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	}
	if e.q.bin == "" {
		e.q.bin = "qemu-img"
	}
	if e.w == nil {
		e.w = io.Discard
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Validate reports what is wrong with the options, before any work; a
// command line calls it to tell a usage error from a failed export.
func (o Options) Validate() error {
	var errs []error
	// The name becomes file names and the OVF's VM id: no paths, no oddities.
	if n := o.Name; n != "" && (n != filepath.Base(n) || strings.HasPrefix(n, ".")) {
		errs = append(errs, fmt.Errorf("name %q: want a plain file name such as bulwark-debian-13", n))
	}
	if err := o.Machine.withDefaults().validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func (e *exporter) run(ctx context.Context, outDir string) (Manifest, error) {
	src, err := e.probe(ctx)
	if err != nil {
		return Manifest{}, err
	}
	made, err := mkdirAll(outDir)
	if err != nil {
		return Manifest{}, fmt.Errorf("export: output directory: %w", err)
	}
	m, err := e.inTemp(ctx, src, outDir)
	if err != nil {
		if made != "" {
			os.RemoveAll(made) // only ever held our temp dir
		}
		return Manifest{}, err
	}
	fmt.Fprintf(e.w, "export: %d files in %s\n", len(m.Files)+1, outDir)
	return m, nil
}

// inTemp writes everything into a temp dir inside outDir (the same
// filesystem, so placing the files is a rename, not a copy) and moves the
// files into outDir when all are done. The temp dir goes either way.
func (e *exporter) inTemp(ctx context.Context, src info, outDir string) (Manifest, error) {
	tmp, err := os.MkdirTemp(outDir, ".export-")
	if err != nil {
		return Manifest{}, fmt.Errorf("export: output directory: %w (is %s writable?)", err, outDir)
	}
	defer os.RemoveAll(tmp)
	m, err := e.write(ctx, src, tmp)
	if err != nil {
		return Manifest{}, err
	}
	return m, place(tmp, outDir, m)
}

// probe reads the input's format and size. A file that is not a disk
// image probes as raw, so a name that says qcow2 must probe as qcow2;
// write later checks that a raw one holds a partition table.
func (e *exporter) probe(ctx context.Context) (info, error) {
	if _, err := os.Stat(e.in); err != nil {
		return info{}, fmt.Errorf("export: input: %w", err)
	}
	i, err := e.q.info(ctx, "export: inspect input", "", e.in)
	if err != nil {
		return info{}, err
	}
	switch {
	case i.Format != "qcow2" && i.Format != "raw":
		return info{}, fmt.Errorf("export: input %s is %s; give the qcow2 or raw image Packer built", e.in, i.Format)
	case strings.EqualFold(filepath.Ext(e.in), ".qcow2") && i.Format != "qcow2":
		return info{}, fmt.Errorf("export: input %s is named .qcow2 but qemu-img reads it as %s: not a qcow2 image (truncated, or not an image at all?)", e.in, i.Format)
	case i.VirtualSize <= 0:
		return info{}, fmt.Errorf("export: input %s is empty", e.in)
	}
	return i, nil
}

// write makes every file in tmp and returns their manifest.
func (e *exporter) write(ctx context.Context, src info, tmp string) (Manifest, error) {
	m := Manifest{Name: e.name, Source: filepath.Base(e.in), SourceFmt: src.Format, VirtualSize: src.VirtualSize}
	for _, d := range disks {
		f, err := e.convert(ctx, d, src, tmp)
		if err != nil {
			return Manifest{}, err
		}
		m.Files = append(m.Files, f)
	}
	ova, err := e.ova(ctx, src, tmp, m.Files)
	if err != nil {
		return Manifest{}, err
	}
	m.Files = append(m.Files, ova)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("export: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestName), append(data, '\n'), 0o644); err != nil {
		return Manifest{}, fmt.Errorf("export: manifest: %w", err)
	}
	return m, nil
}

// convert writes one disk format and describes it.
func (e *exporter) convert(ctx context.Context, d disk, src info, tmp string) (File, error) {
	step := "export: " + d.format
	dst := filepath.Join(tmp, e.name+"."+d.ext)
	start := time.Now()
	fmt.Fprintf(e.w, "export: %s: converting %s (%s, %s) …\n", d.format, e.in, src.Format, human(src.VirtualSize))
	if d.format == "vhd" {
		if _, err := e.q.run(ctx, step+": create", vhdCreateArgs(dst, src.VirtualSize)...); err != nil {
			return File{}, err
		}
	}
	if _, err := e.q.run(ctx, step, d.args(src.Format, e.in, dst)...); err != nil {
		return File{}, err
	}
	if d.format == "raw" {
		if err := hasPartitionTable(dst); err != nil {
			return File{}, fmt.Errorf("%s: %s: %w", step, e.in, err)
		}
	}
	// Read back with the format named: proves qemu-img can open what it
	// wrote, and gives the size a guest will see.
	out, err := e.q.info(ctx, step+": read back", qemuFormat(d.format), dst)
	if err != nil {
		return File{}, err
	}
	f, err := describe(dst, d.format, d.platforms)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", step, err)
	}
	f.VirtualSize = out.VirtualSize
	fmt.Fprintf(e.w, "export: %s: %s, %s in %s\n", d.format, f.Name, human(f.Size), time.Since(start).Round(time.Second))
	return f, nil
}

// ova packs the VMDK already written with its OVF descriptor.
func (e *exporter) ova(ctx context.Context, src info, tmp string, files []File) (File, error) {
	start := time.Now()
	var vmdk File
	for _, f := range files {
		if f.Format == "vmdk" {
			vmdk = f
		}
	}
	populated, err := e.q.populated(ctx, "export: ova: measure data", src.Format, e.in)
	if err != nil {
		return File{}, err
	}
	ovf, err := renderOVF(e.name, e.machine, ovfDisk{File: vmdk.Name, FileSize: vmdk.Size, Capacity: src.VirtualSize, Populated: populated})
	if err != nil {
		return File{}, fmt.Errorf("export: ova: %w", err)
	}
	mtime := time.Now()
	if st, err := os.Stat(e.in); err == nil {
		mtime = st.ModTime() // the same input gives the same tar headers
	}
	path := filepath.Join(tmp, e.name+".ova")
	err = writeOVA(path, member{name: e.name + ".ovf", body: ovf},
		member{name: vmdk.Name, path: filepath.Join(tmp, vmdk.Name)}, mtime)
	if err != nil {
		return File{}, fmt.Errorf("export: %w", err)
	}
	f, err := describe(path, "ova", ovaPlatforms)
	if err != nil {
		return File{}, fmt.Errorf("export: ova: %w", err)
	}
	fmt.Fprintf(e.w, "export: ova: %s, %s in %s\n", f.Name, human(f.Size), time.Since(start).Round(time.Second))
	return f, nil
}

// qemuFormat is qemu-img's driver name for a manifest format.
func qemuFormat(format string) string {
	if format == "vhd" {
		return "vpc"
	}
	return format
}

// describe hashes one finished file.
func describe(path, format string, platforms []string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return File{Format: format, Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Platforms: platforms}, nil
}

// hasPartitionTable checks the MBR signature (0x55AA at byte 510), which
// GPT disks carry in their protective MBR too. An appliance disk always
// has one; a file that is not a disk image almost never does.
func hasPartitionTable(raw string) error {
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	var sig [2]byte
	if _, err := f.ReadAt(sig[:], 510); err != nil || sig != [2]byte{0x55, 0xAA} {
		return errors.New("no partition table (no MBR/GPT signature at byte 510): not a bootable disk image")
	}
	return nil
}

// place renames the finished files from tmp into outDir. An older
// manifest.json goes first and the new one comes last, so a manifest in
// outDir always describes the files beside it. Renames within one
// directory do not fail in practice; if one does, the files already moved
// are complete and stay (one may have replaced the input), and the missing
// manifest says the set is not.
func place(tmp, outDir string, m Manifest) error {
	if err := os.Remove(filepath.Join(outDir, ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("export: remove the old %s: %w", ManifestName, err)
	}
	names := make([]string, 0, len(m.Files)+1)
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	for _, n := range append(names, ManifestName) {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(outDir, n)); err != nil {
			return fmt.Errorf("export: move %s into %s: %w", n, outDir, err)
		}
	}
	return nil
}

// mkdirAll is os.MkdirAll that also returns the topmost directory it
// created ("" if dir was there), so a failed export removes only what it made.
func mkdirAll(dir string) (string, error) {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("%s is not a directory", dir)
		}
		return "", nil
	}
	top := filepath.Clean(dir)
	for {
		parent := filepath.Dir(top)
		if _, err := os.Lstat(parent); err == nil || parent == top {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return top, nil
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
