// fipsprobe is a minimal Go program the fips tests build with and without
// GOFIPS140, standing in for transferd: the build info Verify reads is the
// toolchain's, whatever the program.
package main

import (
	"crypto/fips140"
	"fmt"
)

func main() { fmt.Println(fips140.Enabled()) }
