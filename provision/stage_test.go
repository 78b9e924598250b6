package provision

import "testing"

func TestInstanceOnly(t *testing.T) {
	tests := []struct {
		name   string
		stage  Stage
		marked bool
	}{
		{"the zero stage is an instance", Stage(0), false},
		{"instance", Instance, false},
		{"image build", ImageBuild, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Finding{ControlID: "x.y", Status: Fail}
			got := tt.stage.InstanceOnly(&f, "why")
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
