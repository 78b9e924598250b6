package evidence

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/provision"
)

// bigResults is a verify run of the size a full appliance produces (a few
// hundred checks), built from the fixture.
func bigResults(n int) provision.Results {
	r := testResults()
	base := r.Findings
	r.Findings = nil
	for i := 0; i < n; i++ {
		f := base[i%len(base)]
		f.Property = fmt.Sprintf("%s #%d", f.Property, i)
		r.Findings = append(r.Findings, f)
	}
	return r
}

// BenchmarkWriters reports each writer's cost as a ratio to encoding/json
// marshalling the same results, measured in the same run, so the number
// means the same on a slow CI machine and a fast laptop.
func BenchmarkWriters(b *testing.B) {
	r := bigResults(500)
	cats := testCatalogues()
	m, err := Build(r, cats)
	if err != nil {
		b.Fatal(err)
	}
	writers := map[string]func() error{
		"matrix": func() error { _, err := Build(r, cats); return err },
		"json":   func() error { return WriteJSON(io.Discard, r) },
		"junit":  func() error { return WriteJUnit(io.Discard, r) },
		"oscal":  func() error { return WriteOSCAL(io.Discard, r, m) },
		"html":   func() error { return WriteHTML(io.Discard, r, m) },
		"xlsx":   func() error { return WriteXLSX(b.TempDir()+"/m.xlsx", m) },
	}
	for _, name := range []string{"matrix", "json", "junit", "oscal", "html", "xlsx"} {
		b.Run(name, func(b *testing.B) {
			// The reference runs outside the timer, so ns/op is the writer's alone.
			b.StopTimer()
			ref := timeIt(b.N, func() error { _, err := json.Marshal(r); return err })
			b.StartTimer()
			got := timeIt(b.N, writers[name])
			b.ReportMetric(float64(got)/float64(ref), "x-json.Marshal")
		})
	}
}

func timeIt(n int, f func() error) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := f(); err != nil {
			panic(err) // benchmark only: a writer error means the numbers are meaningless
		}
	}
	return time.Since(start)
}
