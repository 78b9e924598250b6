// Package evidence is the bulwark-evidence post-processor: it turns the
// verify report of a build into the evidence bundle (OSCAL, JUnit, XLSX,
// HTML, JSON) beside the image and writes manifest.json, which ties the
// image's bytes to the policy and the bulwark version that proved it.
package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	bundle "github.com/bulwark-appliance/bulwark/evidence"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// BuilderID marks artifacts this post-processor returns.
const BuilderID = "bulwark.post-processor.evidence"

// PostProcessor implements packersdk.PostProcessor.
type PostProcessor struct {
	config Config
}

// ConfigSpec is the HCL layout of Config.
func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Configure decodes and checks the configuration, reporting every problem.
func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.prepare(raws...) }

// PostProcess writes the bundle and the manifest; the input artifact is
// kept (the evidence describes it, it does not replace it).
func (p *PostProcessor) PostProcess(_ context.Context, ui packersdk.Ui, in packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	files := in.Files()
	if len(files) == 0 {
		return nil, false, false, fmt.Errorf("bulwark-evidence: artifact %q has no files to describe", in.Id())
	}
	dir := p.config.OutputDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(files[0]), "evidence")
	}
	written, err := Write(dir, files, p.config)
	if err != nil {
		return nil, false, false, fmt.Errorf("bulwark-evidence: %w", err)
	}
	ui.Say(fmt.Sprintf("Evidence for %s written to %s (%d files)", filepath.Base(files[0]), dir, len(written)))
	return &Artifact{files: append(append([]string(nil), files...), written...), dir: dir, evidence: written}, true, false, nil
}

// Write reads the report and the policy, writes the bundle and the
// manifest into dir, and returns what it wrote. Nothing is written when
// the inputs are bad.
func Write(dir string, images []string, cfg Config) ([]string, error) {
	res, err := readResults(cfg.ResultsFile)
	if err != nil {
		return nil, err
	}
	p, err := policies.Load(cfg.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	hash := policies.Hash(p)
	if res.PolicyHash != "" && res.PolicyHash != hash {
		return nil, fmt.Errorf("%s was verified under policy %s but policy_file %q hashes to %s: evidence would describe another policy",
			cfg.ResultsFile, res.PolicyHash, cfg.PolicyFile, hash)
	}
	m, err := newManifest(images, cfg.BaseImage, hash, res)
	if err != nil {
		return nil, err
	}
	cats, err := frameworks.Load()
	if err != nil {
		return nil, fmt.Errorf("frameworks: %w", err)
	}
	written, err := bundle.WriteBundle(dir, res, cats)
	if err != nil {
		return nil, err
	}
	mpath := filepath.Join(dir, ManifestFile)
	if err := m.write(mpath); err != nil {
		return written, err
	}
	return append(written, mpath), nil
}

func readResults(file string) (provision.Results, error) {
	var r provision.Results
	b, err := os.ReadFile(file)
	if err != nil {
		return r, fmt.Errorf("results_file: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("results_file %s is not a bulwark verify report: %w", file, err)
	}
	if len(r.Findings) == 0 {
		return r, fmt.Errorf("results_file %s has no findings: verify did not run any control", file)
	}
	return r, nil
}

// Artifact is the input image plus its evidence.
type Artifact struct {
	files, evidence []string
	dir             string
}

func (a *Artifact) BuilderId() string        { return BuilderID }
func (a *Artifact) Files() []string          { return a.files }
func (a *Artifact) Id() string               { return a.dir }
func (a *Artifact) String() string           { return "bulwark evidence in " + a.dir }
func (a *Artifact) State(string) interface{} { return nil }

// Destroy removes only the evidence; the image belongs to the input artifact.
func (a *Artifact) Destroy() error {
	for _, f := range a.evidence {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("bulwark-evidence: remove %s: %w", f, err)
		}
	}
	return nil
}
