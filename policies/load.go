package policies

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
)

//go:embed appliance.yaml
var defaultYAML []byte

// DefaultYAML is the embedded default policy, as shipped.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// EmbeddedName is how errors name the embedded defaults.
const EmbeddedName = "appliance.yaml (embedded)"

// Error is a policy problem at a place in a file.
type Error struct {
	File  string
	Line  int
	Col   int
	Field string // YAML path, e.g. network.ssh_admin_networks[1]
	Msg   string
}

func (e *Error) Error() string {
	if e.Line == 0 { // no place in the file, e.g. it cannot be read
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Field, e.Msg)
}

// Load returns the embedded defaults with userFile (if not empty) merged
// over them, strictly validated.
//
// A key the user sets replaces the default and a key left out keeps it;
// lists replace whole lists; baseline.sysctl merges key by key (see
// decode.go). Every problem is reported, not just the first: the error is
// an errors.Join of *Error values, each naming file:line:column and the
// field, in the file the bad value came from. Load only reads userFile.
func Load(userFile string) (*Policy, error) {
	var data []byte
	if userFile != "" {
		var err error
		if data, err = os.ReadFile(userFile); err != nil {
			return nil, &Error{File: userFile, Field: "(file)", Msg: fmt.Sprintf("cannot read policy: %v", err)}
		}
	}
	return load(userFile, data)
}

// LoadBytes is Load for a policy already in memory; name is how errors
// refer to it.
func LoadBytes(name string, data []byte) (*Policy, error) {
	return load(name, data)
}

func load(name string, data []byte) (*Policy, error) {
	p := &Policy{}
	pos := positions{}
	if errs := decodeFile(EmbeddedName, defaultYAML, p, pos); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if name != "" {
		if errs := decodeFile(name, data, p, pos); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	if errs := validate(p, pos); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}
