package evidence

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Bundle file names, in the order WriteBundle returns them.
const (
	FileJSON  = "results.json"
	FileOSCAL = "assessment-results.json"
	FileJUnit = "junit.xml"
	FileXLSX  = "compliance-matrix.xlsx"
	FileHTML  = "report.html"
)

// WriteBundle writes every evidence document into dir and returns their
// paths. All five are written to temporary files first and renamed only when
// all succeeded, so dir never holds a half-written or mixed bundle. A
// matrix error (a finding naming an unknown row) writes nothing.
func WriteBundle(dir string, r provision.Results, cats []*frameworks.Catalogue) ([]string, error) {
	m, err := Build(r, cats)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("evidence: bundle dir: %w", err)
	}
	writers := []struct {
		name  string
		write func(path string) error
	}{
		{FileJSON, streamTo(func(w io.Writer) error { return WriteJSON(w, r) })},
		{FileOSCAL, streamTo(func(w io.Writer) error { return WriteOSCAL(w, r, m) })},
		{FileJUnit, streamTo(func(w io.Writer) error { return WriteJUnit(w, r) })},
		{FileXLSX, func(path string) error { return WriteXLSX(path, m) }},
		{FileHTML, streamTo(func(w io.Writer) error { return WriteHTML(w, r, m) })},
	}
	var temps, paths []string
	defer func() {
		for _, t := range temps {
			os.Remove(t) // a no-op once renamed
		}
	}()
	for _, wr := range writers {
		// The extension stays last so tools that sniff it (excelize) see .xlsx.
		tmp := filepath.Join(dir, ".tmp-"+wr.name)
		temps = append(temps, tmp)
		if err := wr.write(tmp); err != nil {
			return nil, fmt.Errorf("evidence: bundle %s: %w", wr.name, err)
		}
	}
	for i, wr := range writers {
		dst := filepath.Join(dir, wr.name)
		if err := os.Rename(temps[i], dst); err != nil {
			return paths, fmt.Errorf("evidence: bundle %s: %w", wr.name, err)
		}
		paths = append(paths, dst)
	}
	return paths, nil
}

// streamTo adapts an io.Writer emitter to a path, rendering in memory first
// so a failed render leaves no file at all.
func streamTo(emit func(io.Writer) error) func(string) error {
	return func(path string) error {
		var buf bytes.Buffer
		if err := emit(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return err
		}
		return nil
	}
}
