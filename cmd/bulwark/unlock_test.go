//go:build linux

package main

import (
	"io"
	"strings"
	"testing"
)

// TestReadRecoveryKey: off a terminal the key is one line of stdin; an
// empty stdin is an error, not an empty key handed to cryptsetup.
func TestReadRecoveryKey(t *testing.T) {
	const key = "fjkcvrhu-dkcbrhiu-lkglrnkl-bhkflhvl-cbedglrl-gtijunnc-hrnhgvjr-bvrhvjlk"
	tests := []struct {
		in, want, err string
	}{
		{key + "\n", key, ""},
		{"  " + key + "  ", key, ""},
		{key + "\nsecond line ignored\n", key, ""},
		{"", "", "no recovery key on standard input"},
		{"\n", "", "no recovery key on standard input"},
	}
	for _, tt := range tests {
		got, err := readRecoveryKey(strings.NewReader(tt.in), io.Discard)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("readRecoveryKey(%q) = %q, %v; want %q, error %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
