package provision

import "context"

// Stage says which life stage of the appliance a run hardens or proves.
// Most controls hold the same everywhere; a few can only hold on a
// deployed instance — the data volume is encrypted at the instance's first
// boot with its own key, and clamd starts only once freshclam has fetched
// signatures there. Verified while the image is being built, those report
// not-applicable with the reason instead of failing the build or, worse,
// being disabled by policy and never checked at all.
type Stage int

const (
	// Instance is a running appliance (the default).
	Instance Stage = iota
	// ImageBuild is the Packer build VM that becomes the image.
	ImageBuild
)

type stageKey struct{}

// WithStage returns ctx carrying s.
func WithStage(ctx context.Context, s Stage) context.Context {
	return context.WithValue(ctx, stageKey{}, s)
}

// StageOf is the stage ctx carries; Instance when none was set.
func StageOf(ctx context.Context) Stage {
	s, _ := ctx.Value(stageKey{}).(Stage)
	return s
}

// InstanceOnly marks f not-applicable at image build with reason; it
// returns false (f untouched) on an instance.
func InstanceOnly(ctx context.Context, f *Finding, reason string) bool {
	if StageOf(ctx) != ImageBuild {
		return false
	}
	f.Status, f.Actual, f.Reason = NotApplicable, "image build", reason
	return true
}
