//go:build linux

package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules (issue 23): internal/ is the bottom layer, so nothing
// under it reaches up into provision/ (the controls) or cmd/ (the
// binaries); and no shipped binary links package testing, whose flags and
// hooks have no place in a production process. Test helpers that need
// testing live in their own *test packages (internal/qemu/qemutest,
// provision/check/checktest) so the packages beside them stay clean.
//
// And bulwark links no Pulumi (issue 22): Go runs every linked package's
// init on each start, Pulumi's cost ~100 ms per bulwark run on the host
// and ~1 s under TCG, where verify runs; deploy is bulwark-deploy's.

// layerModule is the module path the rules are written against.
const layerModule = "github.com/bulwark-appliance/bulwark"

// layerPkg is the part of `go list -json` the rules read.
type layerPkg struct {
	ImportPath   string
	Deps         []string // everything it links, transitively
	TestImports  []string // _test.go files in the package
	XTestImports []string // _test.go files in package <name>_test
	Error        *struct{ Err string }
}

// layerForbidden lists, for each layer, the trees it must not import. A
// tree is a module-relative path; it covers the package and everything
// below it.
var layerForbidden = map[string][]string{
	"internal": {"provision", "cmd"},
}

// layerNoTesting lists the binaries (module-relative) that must not link
// package testing: the two the appliance ships, and bulwark-deploy, which
// make build installs beside bulwark.
var layerNoTesting = []string{"cmd/bulwark", "cmd/bulwark-deploy", "cmd/transferd"}

// layerNoLink lists, for a binary (module-relative), the import path
// prefixes it must not link.
var layerNoLink = map[string][]string{
	"cmd/bulwark": {"github.com/pulumi/"},
}

// under reports whether path is tree or a package below it, both given
// relative to the module.
func under(path, tree string) bool {
	return path == tree || strings.HasPrefix(path, tree+"/")
}

// layerViolations returns one line per broken rule, sorted. It reads the
// package's non-test dependencies transitively (what gets linked) and its
// test files' direct imports (a test in internal/ importing provision/ is
// the same inversion, only compiled less often).
func layerViolations(pkgs []layerPkg, module string, forbidden map[string][]string, noTesting []string, noLink map[string][]string) []string {
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	var out []string
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for layer, trees := range forbidden {
			if !under(from, layer) {
				continue
			}
			check := func(kind string, imports []string) {
				for _, imp := range imports {
					to, ok := rel(imp)
					if !ok {
						continue
					}
					for _, tree := range trees {
						if under(to, tree) {
							out = append(out, fmt.Sprintf("%s %s %s (%s/ must not import %s/)", from, kind, to, layer, tree))
						}
					}
				}
			}
			check("links", p.Deps)
			check("tests import", p.TestImports)
			check("tests import", p.XTestImports)
		}
		if slices.Contains(noTesting, from) && slices.Contains(p.Deps, "testing") {
			out = append(out, fmt.Sprintf("%s links testing (a shipped binary must not; move the helper to a *test package)", from))
		}
		for _, prefix := range noLink[from] {
			var linked []string
			for _, d := range p.Deps {
				if strings.HasPrefix(d, prefix) {
					linked = append(linked, d)
				}
			}
			if len(linked) > 0 {
				out = append(out, fmt.Sprintf("%s links %d packages under %s, e.g. %s (it must not; such code goes in its own binary)", from, len(linked), prefix, linked[0]))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// goListModule runs `go list -json` over the whole module with the shipped
// binaries' settings (static, no cgo), so Deps is what `make build` links.
func goListModule(t *testing.T) []layerPkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Deps,TestImports,XTestImports,Error", "./...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []layerPkg
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var p layerPkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayering holds the module to the import rules above.
func TestLayering(t *testing.T) {
	pkgs := goListModule(t)
	var seen []string
	for _, p := range pkgs {
		if p.Error != nil {
			// A package go list cannot load has no reliable Deps: a rule
			// could pass only because its imports were never read.
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		seen = append(seen, p.ImportPath)
	}
	// The rules must have something to read: a renamed module or a moved
	// binary would otherwise pass vacuously.
	for _, bin := range layerNoTesting {
		if !slices.Contains(seen, layerModule+"/"+bin) {
			t.Errorf("go list did not report %s; update layerNoTesting", bin)
		}
	}
	for bin := range layerNoLink {
		if !slices.Contains(seen, layerModule+"/"+bin) {
			t.Errorf("go list did not report %s; update layerNoLink", bin)
		}
	}
	if !slices.ContainsFunc(seen, func(p string) bool { return strings.HasPrefix(p, layerModule+"/internal/") }) {
		t.Errorf("go list reported no package under internal/")
	}
	for _, v := range layerViolations(pkgs, layerModule, layerForbidden, layerNoTesting, layerNoLink) {
		t.Error(v)
	}
}

// TestLayerViolations shows the checker catches each kind of broken rule
// on a small import graph, and passes a clean one.
func TestLayerViolations(t *testing.T) {
	const m = "example.com/m"
	forbidden := map[string][]string{"internal": {"provision", "cmd"}}
	noTesting := []string{"cmd/app"}
	noLink := map[string][]string{"cmd/app": {"github.com/pulumi/"}}
	cases := []struct {
		name string
		pkgs []layerPkg
		want []string
	}{
		{
			name: "clean",
			pkgs: []layerPkg{
				{ImportPath: m + "/internal/host", Deps: []string{"os", m + "/internal/version"}},
				{ImportPath: m + "/provision/ssh", Deps: []string{m + "/internal/host"}, TestImports: []string{"testing"}},
				{ImportPath: m + "/cmd/app", Deps: []string{m + "/provision/ssh", m + "/internal/host"}},
			},
		},
		{
			name: "internal links provision through another package",
			pkgs: []layerPkg{
				{ImportPath: m + "/internal/runner", Deps: []string{m + "/policies", m + "/provision/firewall"}},
			},
			want: []string{"internal/runner links provision/firewall (internal/ must not import provision/)"},
		},
		{
			name: "internal test imports cmd",
			pkgs: []layerPkg{
				{ImportPath: m + "/internal/qemu", XTestImports: []string{m + "/cmd/app"}},
			},
			want: []string{"internal/qemu tests import cmd/app (internal/ must not import cmd/)"},
		},
		{
			name: "binary links testing",
			pkgs: []layerPkg{
				{ImportPath: m + "/cmd/app", Deps: []string{"os", "testing", m + "/internal/qemu"}},
			},
			want: []string{"cmd/app links testing (a shipped binary must not; move the helper to a *test package)"},
		},
		{
			// Prefixes are whole path elements: internalx/ and
			// provisioner/ are other trees.
			name: "prefix is not a tree",
			pkgs: []layerPkg{
				{ImportPath: m + "/internalx", Deps: []string{m + "/provision"}},
				{ImportPath: m + "/internal/a", Deps: []string{m + "/provisioner", m + "/cmdline", "other.org/m/provision"}},
			},
		},
		{
			name: "only the listed binaries are held to no testing",
			pkgs: []layerPkg{
				{ImportPath: m + "/cmd/tool", Deps: []string{"testing"}},
			},
		},
		{
			name: "binary links a forbidden module",
			pkgs: []layerPkg{
				{ImportPath: m + "/cmd/app", Deps: []string{"os", "github.com/pulumi/pulumi/sdk/v3/go/auto", "github.com/pulumi/pulumi/sdk/v3/go/common/workspace"}},
			},
			want: []string{"cmd/app links 2 packages under github.com/pulumi/, e.g. github.com/pulumi/pulumi/sdk/v3/go/auto (it must not; such code goes in its own binary)"},
		},
		{
			name: "only the listed binaries are held to their no-link prefixes",
			pkgs: []layerPkg{
				{ImportPath: m + "/cmd/deploy", Deps: []string{"github.com/pulumi/pulumi/sdk/v3/go/auto"}},
				{ImportPath: m + "/cmd/app", Deps: []string{"github.com/pulumix/other", "github.com/bulwark/pulumi"}},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := layerViolations(c.pkgs, m, forbidden, noTesting, noLink)
			if !slices.Equal(got, c.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
