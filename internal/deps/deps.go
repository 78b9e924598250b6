//go:build tools

// Package deps pins the project's third-party modules while their first
// users are being written, so that parallel work never races on go.mod.
package deps

import (
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/coreos/go-systemd/v22/dbus"
	_ "github.com/coreos/go-systemd/v22/journal"
	_ "github.com/defenseunicorns/go-oscal/src/pkg/validation"
	_ "github.com/defenseunicorns/go-oscal/src/types/oscal-1-1-2"
	_ "github.com/goccy/go-yaml"
	_ "github.com/google/nftables"
	_ "github.com/hashicorp/packer-plugin-sdk/packer"
	_ "github.com/hashicorp/packer-plugin-sdk/plugin"
	_ "github.com/hashicorp/packer-plugin-sdk/template/config"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ec2"
	_ "github.com/pulumi/pulumi-go-provider/infer"
	_ "github.com/pulumi/pulumi/sdk/v3/go/auto"
	_ "github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "github.com/vishvananda/netns"
	_ "github.com/xuri/excelize/v2"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/crypto/ssh"
)
