package provision

import (
	"context"
	"testing"
)

func TestInstanceOnly(t *testing.T) {
	tests := []struct {
		name   string
		ctx    context.Context
		marked bool
	}{
		{"no stage is an instance", context.Background(), false},
		{"instance", WithStage(context.Background(), Instance), false},
		{"image build", WithStage(context.Background(), ImageBuild), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Finding{ControlID: "x.y", Status: Fail}
			got := InstanceOnly(tt.ctx, &f, "why")
			if got != tt.marked {
				t.Fatalf("InstanceOnly = %v, want %v", got, tt.marked)
			}
			if tt.marked && (f.Status != NotApplicable || f.Reason != "why") {
				t.Errorf("marked finding %+v, want not-applicable with the reason", f)
			}
			if !tt.marked && f.Status != Fail {
				t.Errorf("an instance finding was changed: %+v", f)
			}
		})
	}
}
