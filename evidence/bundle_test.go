package evidence

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/provision"
)

func TestWriteBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := WriteBundle(dir, testResults(), testCatalogues())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{FileJSON, FileOSCAL, FileJUnit, FileXLSX, FileHTML}
	if len(paths) != len(want) {
		t.Fatalf("paths = %v", paths)
	}
	for i, p := range paths {
		if p != filepath.Join(dir, want[i]) {
			t.Errorf("path %d = %s, want %s", i, p, want[i])
		}
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (size %v)", p, err, st)
		}
	}
	if got := dirNames(t, dir); strings.Join(got, " ") != "assessment-results.json compliance-matrix.xlsx junit.xml report.html results.json" {
		t.Errorf("bundle dir holds %v (temporary files left behind?)", got)
	}
	// The bundle's JSON is the golden one: the writers are the same.
	b, _ := os.ReadFile(paths[0])
	g, _ := os.ReadFile("testdata/results.golden.json")
	if string(b) != string(g) {
		t.Error("bundle results.json differs from the golden JSON")
	}
}

// Bad input writes nothing: an unknown row fails before any file exists,
// and an earlier bundle in the directory is left as it was.
func TestWriteBundleUnknownRowWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileJSON), []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testResults()
	r.Findings = append(r.Findings, provision.Finding{ControlID: "x.typo", Rows: []string{"SOC2:CC99"}, Property: "p", Status: provision.Pass})
	paths, err := WriteBundle(dir, r, testCatalogues())
	if err == nil || !strings.Contains(err.Error(), `x.typo names framework row "SOC2:CC99"`) {
		t.Fatalf("err = %v, want the unknown row named", err)
	}
	if paths != nil {
		t.Errorf("paths = %v", paths)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("dir now holds %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, FileJSON)); string(b) != "previous" {
		t.Error("earlier bundle was overwritten")
	}
}

func TestWriteBundleTwiceIsIdentical(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := WriteBundle(a, testResults(), testCatalogues()); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteBundle(b, testResults(), testCatalogues()); err != nil {
		t.Fatal(err)
	}
	// The xlsx embeds its own zip timestamps; the text documents must match.
	for _, name := range []string{FileJSON, FileOSCAL, FileJUnit, FileHTML} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if string(x) != string(y) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
