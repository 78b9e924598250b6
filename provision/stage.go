package provision

// Stage says which life stage of the appliance a run hardens or proves.
// Most controls hold the same everywhere; a few can only hold on a
// deployed instance — the data volume is encrypted at the instance's first
// boot with its own key, and clamd starts only once freshclam has fetched
// signatures there. Verified while the image is being built, those report
// not-applicable with the reason instead of failing the build or, worse,
// being disabled by policy and never checked at all.
//
// The stage is given to a family's Controls when the controls are built,
// like the policy: it is a fact of the run, chosen by the caller (bulwark
// --image-build), not something a control discovers.
type Stage int

const (
	// Instance is a running appliance (the default).
	Instance Stage = iota
	// ImageBuild is the Packer build VM that becomes the image.
	ImageBuild
)

func (s Stage) String() string {
	if s == ImageBuild {
		return "image build"
	}
	return "instance"
}

// InstanceOnly marks f not-applicable at image build with reason; it
// returns false (f untouched) on an instance.
func (s Stage) InstanceOnly(f *Finding, reason string) bool {
	if s != ImageBuild {
		return false
	}
	f.Status, f.Actual, f.Reason = NotApplicable, "image build", reason
	return true
}
