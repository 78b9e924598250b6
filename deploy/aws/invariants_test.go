package aws

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/bulwark-appliance/bulwark/deploy/internal/mocktest"
	"github.com/bulwark-appliance/bulwark/deploy/netpolicy"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Type tokens the invariants look at.
const (
	tInstance = "aws:ec2/instance:Instance"
	tVolume   = "aws:ebs/volume:Volume"
	tSnapImp  = "aws:ebs/snapshotImport:SnapshotImport"
	tAMI      = "aws:ec2/ami:Ami"
	tSGRule   = "aws:ec2/securityGroupRule:SecurityGroupRule"
	tSG       = "aws:ec2/securityGroup:SecurityGroup"
	tKey      = "aws:kms/key:Key"
	tBucket   = "aws:s3/bucket:Bucket"
	tPAB      = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
)

// invariant checks one security property over everything a program
// registered and names the resource and the evidence when it fails.
type invariant struct {
	name  string
	check func(pol *policies.Policy, res []mocktest.Resource) error
}

var invariants = []invariant{
	{"no-public-ssh", noPublicSSH},
	{"ingress-equals-policy", ingressEqualsPolicy},
	{"ebs-encrypted-with-cmk", encryptedWithCMK},
	{"imdsv2-required", imdsv2},
	{"s3-public-access-blocked", s3Blocked},
	{"user-data-secret", userDataSecret},
	{"ami-boots-uefi", amiBootsUEFI},
	{"image-imported-raw", importedRaw},
}

func checkAll(pol *policies.Policy, res []mocktest.Resource) map[string]error {
	out := map[string]error{}
	for _, inv := range invariants {
		if err := inv.check(pol, res); err != nil {
			out[inv.name] = err
		}
	}
	return out
}

func prop(pm resource.PropertyMap, path ...string) resource.PropertyValue {
	v := resource.NewObjectProperty(pm)
	for _, k := range path {
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			return resource.NewNullProperty()
		}
		v = v.ObjectValue()[resource.PropertyKey(k)]
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func str(pm resource.PropertyMap, path ...string) string {
	if v := prop(pm, path...); v.IsString() {
		return v.StringValue()
	}
	return ""
}

func boolean(pm resource.PropertyMap, path ...string) bool {
	v := prop(pm, path...)
	return v.IsBool() && v.BoolValue()
}

func strList(pm resource.PropertyMap, key string) []string {
	var out []string
	if v := prop(pm, key); v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e.IsString() {
				out = append(out, e.StringValue())
			}
		}
	}
	return out
}

func port(pm resource.PropertyMap, key string) int {
	if v := prop(pm, key); v.IsNumber() {
		return int(v.NumberValue())
	}
	return -1
}

func of(res []mocktest.Resource, token string) []mocktest.Resource {
	return slices.DeleteFunc(slices.Clone(res), func(r mocktest.Resource) bool { return r.Type != token })
}

func noPublicSSH(pol *policies.Policy, res []mocktest.Resource) error {
	ssh := int(pol.Network.SSHPort)
	var errs []error
	for _, r := range of(res, tSGRule) {
		if str(r.Inputs, "type") != "ingress" {
			continue
		}
		all := str(r.Inputs, "protocol") == "-1"
		if !all && (port(r.Inputs, "fromPort") > ssh || port(r.Inputs, "toPort") < ssh) {
			continue
		}
		for _, c := range append(strList(r.Inputs, "cidrBlocks"), strList(r.Inputs, "ipv6CidrBlocks")...) {
			if c == netpolicy.AnyV4 || c == netpolicy.AnyV6 {
				errs = append(errs, fmt.Errorf("%s: ingress to ssh port %d from %s", r.Name, ssh, c))
			}
		}
	}
	for _, sg := range of(res, tSG) {
		if v := prop(sg.Inputs, "ingress"); v.IsArray() && len(v.ArrayValue()) > 0 {
			errs = append(errs, fmt.Errorf("%s: inline ingress rules bypass the per-rule resources", sg.Name))
		}
	}
	return errors.Join(errs...)
}

func ingressEqualsPolicy(pol *policies.Policy, res []mocktest.Resource) error {
	var rules []netpolicy.Rule
	for _, r := range of(res, tSGRule) {
		if str(r.Inputs, "type") != "ingress" {
			continue
		}
		rules = append(rules, netpolicy.Rule{
			Proto: str(r.Inputs, "protocol"), FromPort: uint16(port(r.Inputs, "fromPort")), ToPort: uint16(port(r.Inputs, "toPort")),
			CIDRv4: strList(r.Inputs, "cidrBlocks"), CIDRv6: strList(r.Inputs, "ipv6CidrBlocks"), Description: r.Name,
		})
	}
	if err := netpolicy.MirrorsPolicy(pol.Network, rules); err != nil {
		return fmt.Errorf("security group ingress differs from policy.network: %w", err)
	}
	return nil
}

func encryptedWithCMK(_ *policies.Policy, res []mocktest.Resource) error {
	keys := of(res, tKey)
	if len(keys) != 1 {
		return fmt.Errorf("want exactly one customer-managed KMS key, found %d", len(keys))
	}
	arn := keyArn(keys[0].Name)
	if !boolean(keys[0].Inputs, "enableKeyRotation") {
		return fmt.Errorf("%s: key rotation is off", keys[0].Name)
	}
	var errs []error
	want := func(name, what string, pm resource.PropertyMap, path ...string) {
		enc := boolean(pm, append(slices.Clone(path), "encrypted")...)
		kid := str(pm, append(slices.Clone(path), "kmsKeyId")...)
		if !enc || kid != arn {
			errs = append(errs, fmt.Errorf("%s %s: encrypted=%v kmsKeyId=%q, want true and %s", name, what, enc, kid, arn))
		}
	}
	for _, r := range of(res, tVolume) {
		want(r.Name, "volume", r.Inputs)
	}
	for _, r := range of(res, tSnapImp) {
		want(r.Name, "snapshot import", r.Inputs)
	}
	for _, r := range of(res, tInstance) {
		want(r.Name, "root block device", r.Inputs, "rootBlockDevice")
		if v := prop(r.Inputs, "ebsBlockDevices"); v.IsArray() && len(v.ArrayValue()) > 0 {
			errs = append(errs, fmt.Errorf("%s: inline ebsBlockDevices are not allowed (use the data volume)", r.Name))
		}
	}
	if len(of(res, tVolume)) == 0 {
		errs = append(errs, errors.New("no separate data volume"))
	}
	return errors.Join(errs...)
}

func imdsv2(_ *policies.Policy, res []mocktest.Resource) error {
	var errs []error
	for _, r := range of(res, tInstance) {
		if got := str(r.Inputs, "metadataOptions", "httpTokens"); got != "required" {
			errs = append(errs, fmt.Errorf("%s: metadataOptions.httpTokens = %q, want required (IMDSv2)", r.Name, got))
		}
	}
	return errors.Join(errs...)
}

func s3Blocked(_ *policies.Policy, res []mocktest.Resource) error {
	blocked := map[string]bool{}
	for _, r := range of(res, tPAB) {
		all := true
		for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			all = all && boolean(r.Inputs, k)
		}
		blocked[str(r.Inputs, "bucket")] = all
	}
	var errs []error
	for _, b := range of(res, tBucket) {
		if !blocked[b.Name+"-id"] {
			errs = append(errs, fmt.Errorf("%s: public access not fully blocked", b.Name))
		}
	}
	return errors.Join(errs...)
}

func userDataSecret(_ *policies.Policy, res []mocktest.Resource) error {
	var errs []error
	for _, r := range of(res, tInstance) {
		v := r.Inputs["userData"]
		if !v.IsSecret() {
			errs = append(errs, fmt.Errorf("%s: userData (holds the LUKS key) is not a secret", r.Name))
		}
	}
	for _, r := range res {
		if mocktest.Contains(r.Inputs, testKey) || mocktest.Contains(r.Inputs, base64.StdEncoding.EncodeToString([]byte(testKey))) {
			errs = append(errs, fmt.Errorf("%s: the LUKS key appears in plain inputs", r.Name))
		}
	}
	return errors.Join(errs...)
}

// amiBootsUEFI: one AMI, registered to boot through UEFI (shim and signed
// GRUB); AWS would otherwise pick legacy BIOS for an imported snapshot.
func amiBootsUEFI(_ *policies.Policy, res []mocktest.Resource) error {
	amis := of(res, tAMI)
	if len(amis) != 1 {
		return fmt.Errorf("want exactly one AMI, found %d", len(amis))
	}
	if got := str(amis[0].Inputs, "bootMode"); got != "uefi" {
		return fmt.Errorf("%s: bootMode = %q, want uefi", amis[0].Name, got)
	}
	return nil
}

// importedRaw: the AMI's root snapshot is the import of the raw disk: the
// import reads format RAW from a .raw object, and the AMI maps that
// snapshot (the mock's ID is the name plus "-id").
func importedRaw(_ *policies.Policy, res []mocktest.Resource) error {
	imps := of(res, tSnapImp)
	if len(imps) != 1 {
		return fmt.Errorf("want exactly one snapshot import, found %d", len(imps))
	}
	imp := imps[0]
	var errs []error
	if got := str(imp.Inputs, "diskContainer", "format"); got != "RAW" {
		errs = append(errs, fmt.Errorf("%s: diskContainer.format = %q, want RAW", imp.Name, got))
	}
	if key := str(imp.Inputs, "diskContainer", "userBucket", "s3Key"); !strings.HasSuffix(key, ".raw") {
		errs = append(errs, fmt.Errorf("%s: imports s3 key %q, want the .raw image", imp.Name, key))
	}
	for _, a := range of(res, tAMI) {
		var snaps []string
		if v := prop(a.Inputs, "ebsBlockDevices"); v.IsArray() {
			for _, d := range v.ArrayValue() {
				if d.IsObject() {
					snaps = append(snaps, str(d.ObjectValue(), "snapshotId"))
				}
			}
		}
		if !slices.Equal(snaps, []string{imp.Name + "-id"}) {
			errs = append(errs, fmt.Errorf("%s: block device snapshots %v, want only the import %s", a.Name, snaps, imp.Name+"-id"))
		}
	}
	return errors.Join(errs...)
}
