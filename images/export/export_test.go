package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// makeDisk writes a sparse raw disk of size bytes with a GPT (two
// partitions, as sfdisk writes them) and a MiB of non-zero data, so that
// qemu-img compare has something to get wrong. format qcow2 converts it.
func makeDisk(t *testing.T, dir string, size int64, format string) string {
	t.Helper()
	raw := filepath.Join(dir, "src.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("bulwark "), MiB/8)
	if _, err := f.WriteAt(data, 8*MiB); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sfdisk := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw)
	sfdisk.Stdin = strings.NewReader("label: gpt\n,4MiB,21686148-6449-6E6F-744E-656564454649\n,\n")
	if out, err := sfdisk.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if format == "raw" {
		return raw
	}
	img := filepath.Join(dir, "bulwark-test."+format)
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", format, raw, img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	return img
}

func qemuInfo(t *testing.T, format, path string) map[string]any {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output", "json", "-f", format, path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExport runs the whole export for real on a small disk and checks
// each file the way its importer would.
func TestExport(t *testing.T) {
	testutil.RequireTools(t, "qemu-img", "sfdisk")
	tests := []struct {
		name   string
		size   int64
		format string
		// inPlace exports into the input's own directory, as make image
		// does: the qcow2 output replaces the input.
		inPlace bool
	}{
		{"raw", 64 * MiB, "raw", false},
		{"qcow2", 64 * MiB, "qcow2", false},
		{"qcow2 into its own directory", 64 * MiB, "qcow2", true},
		// Azure's rule bites only here: the VHD must round up to 65 MiB.
		{"raw not a whole MiB", 64*MiB + 512, "raw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := makeDisk(t, dir, tt.size, tt.format)
			out := filepath.Join(dir, "images")
			// The disk makeDisk wrote, which every output must match.
			ref := filepath.Join(dir, "src.raw")
			if tt.inPlace {
				out = dir
				moved := filepath.Join(t.TempDir(), "src.raw")
				if err := os.Rename(ref, moved); err != nil {
					t.Fatal(err)
				}
				ref = moved
			}
			var progress bytes.Buffer
			m, err := Export(context.Background(), src, out, Options{Name: "bulwark-test", Progress: &progress})
			if err != nil {
				t.Fatalf("%v\nprogress:\n%s", err, progress.String())
			}
			t.Logf("progress:\n%s", progress.String())
			checkManifest(t, out, m, tt.size, tt.format)
			checkFormats(t, out, m, ref, tt.size)
			checkExportedOVA(t, out, m, tt.size)
			for _, f := range []string{"raw", "qcow2", "vmdk", "vhd", "ova"} {
				if !strings.Contains(progress.String(), "export: "+f+": ") {
					t.Errorf("no progress line for %s", f)
				}
			}
		})
	}
}

// checkManifest: manifest.json on disk is the one returned, lists every
// format once, and each file has the manifest's size and SHA-256; nothing
// else (no temp dir) is left in the directory.
func checkManifest(t *testing.T, out string, m Manifest, size int64, format string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk Manifest
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(m)
	got, _ := json.Marshal(onDisk)
	if !bytes.Equal(want, got) {
		t.Errorf("manifest.json differs from the returned manifest:\n%s\n%s", got, want)
	}
	if m.VirtualSize != size || m.SourceFmt != format || m.Name != "bulwark-test" {
		t.Errorf("manifest head %+v, want size %d format %s", m, size, format)
	}
	var formats, names []string
	for _, f := range m.Files {
		formats = append(formats, f.Format)
		names = append(names, f.Name)
		d, err := describe(filepath.Join(out, f.Name), f.Format, f.Platforms)
		if err != nil {
			t.Fatal(err)
		}
		if d.Size != f.Size || d.SHA256 != f.SHA256 {
			t.Errorf("%s: on disk %d bytes sha256 %s; manifest says %d %s", f.Name, d.Size, d.SHA256, f.Size, f.SHA256)
		}
		if len(f.Platforms) == 0 {
			t.Errorf("%s names no platform", f.Name)
		}
	}
	slices.Sort(formats)
	if strings.Join(formats, " ") != "ova qcow2 raw vhd vmdk" {
		t.Errorf("formats %v", formats)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	names = append(names, ManifestName)
	slices.Sort(names)
	if strings.Join(have, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want exactly %v", out, have, names)
	}
}

// checkFormats reads each disk back with qemu-img: the right format and
// subformat, and the same content as ref, the raw disk the input was made
// from (for a qcow2 input, that also checks the input's conversion).
func checkFormats(t *testing.T, out string, m Manifest, ref string, size int64) {
	t.Helper()
	for _, f := range m.Files {
		if f.Format == "ova" {
			continue
		}
		path := filepath.Join(out, f.Name)
		qf := qemuFormat(f.Format)
		info := qemuInfo(t, qf, path)
		vsize := int64(info["virtual-size"].(float64))
		if vsize != f.VirtualSize {
			t.Errorf("%s: virtual size %d, manifest says %d", f.Name, vsize, f.VirtualSize)
		}
		switch f.Format {
		case "vmdk":
			spec, _ := info["format-specific"].(map[string]any)
			data, _ := spec["data"].(map[string]any)
			if ct := data["create-type"]; ct != "streamOptimized" {
				t.Errorf("%s: create-type %v, want streamOptimized", f.Name, ct)
			}
		case "vhd":
			checkFixedVHD(t, path, vsize)
			if vsize%MiB != 0 || vsize < size || vsize-size >= MiB {
				t.Errorf("%s: virtual size %d: want %d rounded up to a whole MiB", f.Name, vsize, size)
			}
		default:
			if vsize != size {
				t.Errorf("%s: virtual size %d, want %d", f.Name, vsize, size)
			}
		}
		// Without -s, compare treats the VHD's extra tail as zeros, which
		// is what a guest reads there.
		cmp := exec.Command("qemu-img", "compare", "-f", "raw", "-F", qf, ref, path)
		if b, err := cmp.CombinedOutput(); err != nil {
			t.Errorf("qemu-img compare %s %s: %v\n%s", ref, f.Name, err, b)
		}
	}
}

// checkFixedVHD reads the VHD footer: qemu-img info does not report the
// subformat, and probes a fixed VHD as raw. Footer layout: "conectix"
// cookie, current size at byte 48, disk type at byte 60 (2 = fixed).
func checkFixedVHD(t *testing.T, path string, vsize int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != vsize+512 {
		t.Errorf("%s: %d bytes, want the data (%d) plus a 512-byte footer", path, len(b), vsize)
		return
	}
	foot := b[len(b)-512:]
	if string(foot[:8]) != "conectix" {
		t.Fatalf("%s: no VHD footer cookie: %q", path, foot[:8])
	}
	if typ := binary.BigEndian.Uint32(foot[60:64]); typ != 2 {
		t.Errorf("%s: disk type %d, want 2 (fixed)", path, typ)
	}
	if cur := int64(binary.BigEndian.Uint64(foot[48:56])); cur != vsize {
		t.Errorf("%s: footer current size %d, want %d", path, cur, vsize)
	}
}

// checkExportedOVA: member order and .mf, the VMDK inside is the one
// beside it, and the OVF describes that disk.
func checkExportedOVA(t *testing.T, out string, m Manifest, size int64) {
	t.Helper()
	var vmdk File
	for _, f := range m.Files {
		if f.Format == "vmdk" {
			vmdk = f
		}
	}
	ms := checkOVA(t, filepath.Join(out, "bulwark-test.ova"), "bulwark-test")
	if hexSHA(ms[1].body) != vmdk.SHA256 {
		t.Errorf("the OVA's VMDK is not the exported %s", vmdk.Name)
	}
	var d ovfDoc
	if err := xml.Unmarshal(ms[0].body, &d); err != nil {
		t.Fatalf("OVF: %v", err)
	}
	if d.File.Href != vmdk.Name || d.File.Size != vmdk.Size || d.Disk.Capacity != size {
		t.Errorf("OVF disk %+v %+v; want %s of %d bytes, capacity %d", d.File, d.Disk, vmdk.Name, vmdk.Size, size)
	}
	// The disk holds a MiB of data plus the GPT; holes do not count.
	if d.Disk.Populated < MiB || d.Disk.Populated > 2*MiB {
		t.Errorf("OVF populatedSize %d, want about 1 MiB", d.Disk.Populated)
	}
}

// TestExportFailureLeavesNothing: each failure names its step and cause,
// and the output directory is as it was: a marker file that was there
// stays, nothing else appears (no temp dir, no partial file).
func TestExportFailureLeavesNothing(t *testing.T) {
	testutil.RequireTools(t, "qemu-img", "sfdisk")
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk := makeDisk(t, dir, 16*MiB, "raw")
	text := filepath.Join(dir, "notes.qcow2")
	textRaw := filepath.Join(dir, "notes.raw")
	for _, p := range []string{text, textRaw} {
		if err := os.WriteFile(p, []byte("these are notes, not a disk image\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A qemu-img that fails on the VHD, the last disk: every other format
	// is complete in the temp dir by then.
	failing := filepath.Join(dir, "qemu-img-failing")
	script := "#!/bin/sh\n[ \"$1\" = convert ] && for a in \"$@\"; do [ \"$a\" = vpc ] && { echo 'qemu-img: simulated: No space left on device' >&2; exit 1; }; done\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(failing, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		in      string
		out     string // relative to a fresh dir holding a marker file; "" is that dir
		qemuImg string
		want    []string
	}{
		{"input is not a qcow2", text, "", "", []string{"export: input", "not a qcow2 image"}},
		{"input is not a disk", textRaw, "", "", []string{"export: raw", "no partition table"}},
		{"input missing", filepath.Join(dir, "nope.qcow2"), "", "", []string{"export: input", "no such file"}},
		{"qemu-img fails mid-way", disk, "", failing, []string{"export: vhd", "convert", "simulated: No space left on device"}},
		{"out dir is a file", disk, aFile, "", []string{"export: output directory", "not a directory"}},
		{"out dir under a file", disk, filepath.Join(aFile, "images"), "", []string{"export: output directory", "not a directory"}},
		{"new out dir removed again", disk, "new/images", failing, []string{"export: vhd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if err := os.WriteFile(filepath.Join(base, "keep.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := base
			switch {
			case filepath.IsAbs(tt.out):
				out = tt.out
			case tt.out != "":
				out = filepath.Join(base, tt.out)
			}
			_, err := Export(context.Background(), tt.in, out, Options{Name: "bulwark-test", QemuImg: tt.qemuImg})
			if err == nil {
				t.Fatal("export succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			entries, _ := os.ReadDir(base)
			var left []string
			for _, e := range entries {
				left = append(left, e.Name())
			}
			if strings.Join(left, " ") != "keep.txt" {
				t.Errorf("%s holds %v after a failed export, want only keep.txt", base, left)
			}
			if tt.out == "new/images" {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("%s, made by the export, is still there (%v)", out, err)
				}
			}
		})
	}
}

func TestExportRejectsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"path as name", Options{Name: "../x"}, "plain file name"},
		{"hidden name", Options{Name: ".x"}, "plain file name"},
		{"bad machine", Options{Machine: Machine{SCSI: "ide"}}, `scsi "ide"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := Export(context.Background(), "/nonexistent/in.qcow2", out, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
