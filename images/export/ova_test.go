package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ovaMember is one tar member read back.
type ovaMember struct {
	name   string
	format tar.Format
	body   []byte
}

func readOVA(t *testing.T, path string) []ovaMember {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ovaMember
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ovaMember{h.Name, h.Format, b})
	}
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// checkOVA is shared with the integration test: the member order the OVF
// spec requires, plain USTAR headers, and a .mf whose lines hash the
// members before it.
func checkOVA(t *testing.T, path, name string) []ovaMember {
	t.Helper()
	ms := readOVA(t, path)
	want := []string{name + ".ovf", name + ".vmdk", name + ".mf"}
	var got []string
	for _, m := range ms {
		got = append(got, m.name)
		if m.format&tar.FormatUSTAR == 0 {
			t.Errorf("%s: tar header format %v, want USTAR", m.name, m.format)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("OVA members %v, want %v (descriptor first, manifest last)", got, want)
	}
	wantMF := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n", ms[0].name, hexSHA(ms[0].body), ms[1].name, hexSHA(ms[1].body))
	if string(ms[2].body) != wantMF {
		t.Errorf(".mf:\n%s\nwant:\n%s", ms[2].body, wantMF)
	}
	return ms
}

func TestWriteOVA(t *testing.T) {
	tests := []struct {
		name string
		disk []byte
	}{
		{"small", []byte("pretend vmdk")},
		{"larger than a tar block", bytes.Repeat([]byte{7}, 10000)},
		{"empty disk", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			diskPath := filepath.Join(dir, "vm.vmdk")
			if err := os.WriteFile(diskPath, tt.disk, 0o644); err != nil {
				t.Fatal(err)
			}
			ovf := member{name: "vm.ovf", body: []byte("<Envelope/>\n")}
			path := filepath.Join(dir, "vm.ova")
			// Sub-second times would push archive/tar to PAX headers.
			mtime := time.Date(2026, 12, 5, 9, 0, 0, 500, time.UTC)
			if err := writeOVA(path, ovf, member{name: "vm.vmdk", path: diskPath}, mtime); err != nil {
				t.Fatal(err)
			}
			ms := checkOVA(t, path, "vm")
			if !bytes.Equal(ms[0].body, ovf.body) || !bytes.Equal(ms[1].body, tt.disk) {
				t.Errorf("member contents differ from what was written")
			}
		})
	}
}

// TestWriteOVARefusesExisting: the OVA is made once, in Export's temp
// dir; an existing file there means something else is writing it.
func TestWriteOVARefusesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vm.ova")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := writeOVA(path, member{name: "vm.ovf"}, member{name: "vm.vmdk", body: []byte("d")}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "ova:") {
		t.Errorf("got %v, want an ova: error", err)
	}
}

func TestMF(t *testing.T) {
	got := string(mf([]sum{{"a.ovf", "ba7816bf"}, {"a.vmdk", "00ff"}}))
	want := "SHA256(a.ovf)= ba7816bf\nSHA256(a.vmdk)= 00ff\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
