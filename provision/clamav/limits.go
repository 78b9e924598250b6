package clamav

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// parseSize reads a clamd.conf SIZE: bytes, or a number with a k/K, m/M
// or g/G suffix (clamd's own units, powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

// limitFindings checks that each size limit in path lets an upload of
// maxMiB through whole. An unset key falls back to clamd's built-in
// default (100M at most), which is below any real upload bound, so it
// fails too; 0 ("no limit") fails because bulwark wants an explicit one.
func limitFindings(m provision.Meta, h host.Host, path string, keys []string, maxMiB int64) []provision.Finding {
	b, err := h.ReadFile(path)
	if err != nil {
		f := m.Finding("file "+path, "present")
		return []provision.Finding{check.Fail(f, "missing", err.Error(), provision.Evidence{Source: path, Read: err.Error()})}
	}
	c := parseConf(b)
	want := fmt.Sprintf("at least %dM (transfer.max_upload_mib)", maxMiB)
	var out []provision.Finding
	for _, k := range keys {
		f := m.Finding(path+" "+k, want)
		ev := provision.Evidence{Source: path, Read: quote(k, c[k])}
		if len(c[k]) != 1 {
			out = append(out, check.Fail(f, strings.Join(c[k], ", "), k+" must be set exactly once; run bulwark apply", ev))
			continue
		}
		n, err := parseSize(c[k][0])
		switch {
		case err != nil:
			out = append(out, check.Fail(f, c[k][0], k+": "+err.Error(), ev))
		case n < maxMiB<<20:
			out = append(out, check.Fail(f, c[k][0], k+" is below the upload limit: clamd would refuse or skip scanning large uploads", ev))
		default:
			out = append(out, check.Pass(f, c[k][0], ev))
		}
	}
	return out
}
