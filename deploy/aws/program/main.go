// Command program is the AWS Pulumi program (Pulumi.yaml beside it): it
// deploys one bulwark appliance per stack. See deploy/README.md.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/aws"
)

func main() { pulumi.Run(aws.Run) }
