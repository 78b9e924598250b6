//go:build linux

package luks

import (
	"context"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// TestVolumeAtImageBuild: in the build VM (live, but the image) the data
// volume cannot exist yet, so luks.volume is not applicable with a reason;
// the same live host as an instance is checked (and fails here, where no
// volume is mounted at the policy's mount point).
func TestVolumeAtImageBuild(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.NewLocal("/")
	if err != nil {
		t.Fatal(err)
	}
	build := (&Volume{base: base{m: volumeMeta}, LUKS: p.LUKS, Stage: provision.ImageBuild}).Verify(context.Background(), h)
	if len(build) != 1 || build[0].Status != provision.NotApplicable || build[0].Reason == "" {
		t.Fatalf("image build: %+v, want one not-applicable finding with a reason", build)
	}
	inst := (&Volume{base: base{m: volumeMeta}, LUKS: p.LUKS, Stage: provision.Instance}).Verify(context.Background(), h)
	failed := false
	for _, f := range inst {
		failed = failed || f.Status == provision.Fail
	}
	if !failed {
		t.Fatalf("instance without a data volume: %+v, want a failing finding", inst)
	}
}
