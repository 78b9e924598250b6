package policies

import (
	"os"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// BenchmarkLoad reports what the strict, position-tracking, all-errors
// loader costs relative to goccy's plain yaml.Unmarshal of the same two
// documents (defaults, then the operator file), measured in the same loop:
// the x-plain-unmarshal metric is the ratio, not a wall-clock promise.
//
//	go test -run '^$' -bench BenchmarkLoad -benchtime 200x ./policies/
func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile("testdata/good/merge.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var ours, ref time.Duration
	for b.Loop() {
		t0 := time.Now()
		var p Policy
		if err := yaml.Unmarshal(defaultYAML, &p); err != nil {
			b.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := LoadBytes("merge.yaml", data); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t1)
		ref += t1.Sub(t0)
	}
	b.ReportMetric(float64(ours)/float64(ref), "x-plain-unmarshal")
}
