package appliance

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/internal/mocktest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

// machine is a consumer-side Target for the component's own tests: it
// registers one custom resource the way a real target must (parented,
// name derived) and keeps the spec it was handed.
type machine struct {
	spec     Spec
	userData *mocktest.Value
}

func (m *machine) Deploy(ctx *pulumi.Context, spec Spec) (*Deployment, error) {
	m.spec = spec
	m.userData = mocktest.Capture(spec.UserData)
	var res pulumi.CustomResourceState
	err := ctx.RegisterResource("test:index:Machine", spec.Name+"-vm",
		pulumi.Map{"userData": spec.UserData}, &res, pulumi.Parent(spec.Parent))
	if err != nil {
		return nil, err
	}
	return &Deployment{
		Host:             pulumi.String("203.0.113.7").ToStringOutput(),
		InstanceID:       res.ID().ToStringOutput(),
		EvidenceLocation: pulumi.String("file:///var/lib/bulwark/evidence").ToStringOutput(),
	}, nil
}

func TestApplianceComponent(t *testing.T) {
	m := &mocktest.Mocks{}
	target := &machine{}
	var url, admin, id *mocktest.Value
	err := mocktest.Run(m, func(ctx *pulumi.Context) error {
		app, err := NewAppliance(ctx, "app", &ApplianceArgs{Policy: policiestest.Default(t), Target: target, LUKSKey: pulumi.String(testKey)})
		if err != nil {
			return err
		}
		url, admin, id = mocktest.Capture(app.URL), mocktest.Capture(app.AdminURL), mocktest.Capture(app.InstanceID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res := m.Resources()
	if len(res) != 2 || res[0].Type != TypeToken || res[0].Name != "app" {
		t.Fatalf("registrations = %+v, want the component first, then its child", res)
	}
	if res[1].Parent != res[0].URN || !strings.HasPrefix(res[1].Name, "app-") {
		t.Errorf("child %q parent %q, want parent %q and a name derived from app", res[1].Name, res[1].Parent, res[0].URN)
	}
	// The root stack registers its outputs too, so one call is ours.
	if n := m.OutputRegistrations(); n != 2 {
		t.Errorf("RegisterResourceOutputs called %d times, want 2 (stack + component)", n)
	}
	for _, c := range []struct {
		name string
		v    *mocktest.Value
		want string
	}{{"url", url, "https://203.0.113.7/"}, {"adminUrl", admin, "https://203.0.113.7:8443/"}, {"instanceId", id, "app-vm-id"}} {
		if got, _, ok := c.v.Get(); !ok || got != c.want {
			t.Errorf("%s = %v (resolved %v), want %s", c.name, got, ok, c.want)
		}
	}
	ud, secret, ok := target.userData.Get()
	if !ok || !secret {
		t.Fatalf("user data resolved=%v secret=%v: the LUKS key must only travel as a secret", ok, secret)
	}
	if !strings.Contains(ud.(string), base64.StdEncoding.EncodeToString([]byte(testKey))) {
		t.Errorf("user data lacks the key:\n%s", ud)
	}
	if !res[1].Inputs["userData"].IsSecret() {
		t.Errorf("registered userData input is not secret: %v", res[1].Inputs["userData"])
	}
	if mocktest.Contains(res[1].Inputs, testKey) {
		t.Error("LUKS key appears in plain inputs")
	}
}

// TestApplianceRejectsBadArgs: each bad input is refused with a message
// naming it, before anything is registered.
func TestApplianceRejectsBadArgs(t *testing.T) {
	tests := []struct {
		name string
		args func(*ApplianceArgs)
		want string
	}{
		{"no policy", func(a *ApplianceArgs) { a.Policy = nil }, "no policy"},
		{"no target", func(a *ApplianceArgs) { a.Target = nil }, "no target"},
		{"no key", func(a *ApplianceArgs) { a.LUKSKey = nil }, "bulwark:luksKey"},
		{"public ssh", func(a *ApplianceArgs) { a.Policy.Network.PublicPorts = append(a.Policy.Network.PublicPorts, 22) }, "port 22 is an admin port"},
		{"bad syslog", func(a *ApplianceArgs) { a.Policy.Syslog.Target = "siem" }, "syslog.target"},
		{"negative disk", func(a *ApplianceArgs) { a.DataDiskGiB = -1 }, "data disk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &mocktest.Mocks{}
			args := &ApplianceArgs{Policy: policiestest.Default(t), Target: &machine{}, LUKSKey: pulumi.String(testKey)}
			tt.args(args)
			err := mocktest.Run(m, func(ctx *pulumi.Context) error {
				_, err := NewAppliance(ctx, "app", args)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
			if n := len(m.Resources()); n != 0 {
				t.Errorf("%d resources registered despite the error", n)
			}
		})
	}
}

func TestCloudInit(t *testing.T) {
	p := policiestest.Default(t)
	p.Syslog.Target = "192.0.2.10:6514"
	got, err := CloudInit(p, testKey)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cloud-init.yaml", got)

	if _, err := CloudInit(p, "short"); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short key: err = %v, want a length error", err)
	}
	p.LUKS.KeySource = "tpm2"
	got, err = CloudInit(p, "")
	if err != nil || strings.Contains(got, p.LUKS.KeyFile) {
		t.Errorf("tpm2 key source: err=%v, doc writes a key file:\n%s", err, got)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), []byte(got))
}
