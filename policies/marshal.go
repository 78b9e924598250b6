package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/goccy/go-yaml"
)

// Marshal writes the effective policy as YAML (for `bulwark policy show`).
// Load of the output gives the same policy back.
func Marshal(p *Policy) ([]byte, error) {
	out, err := yaml.MarshalWithOptions(p, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("policies: marshal: %w", err)
	}
	return out, nil
}

// Hash is the SHA-256 (hex) of the effective policy's canonical encoding:
// JSON, whose struct fields keep declaration order and whose map keys are
// sorted, so equal policies hash equal however their files were written
// (comments, key order, defaults left implicit or restated).
func Hash(p *Policy) string {
	b, err := json.Marshal(p)
	if err != nil {
		// Policy holds only strings, numbers, bools, maps and lists and
		// the two text marshalers, none of which can fail.
		return "error:" + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
