//go:build linux

package api

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateFilename accepts a name to show and offer for download. It is
// never used as a path (blobs have random names), but it reaches browsers,
// CSV exports and the journal, so path parts, control and bidi-override
// characters are refused rather than cleaned: the sender sees why.
func ValidateFilename(name string) error {
	switch {
	case name == "":
		return errors.New("file name is empty")
	case len(name) > 255:
		return errors.New("file name is longer than 255 bytes")
	case !utf8.ValidString(name):
		return errors.New("file name is not valid UTF-8")
	case name == "." || name == "..":
		return errors.New("file name is a path component")
	case strings.ContainsAny(name, `/\`):
		return errors.New("file name contains a path separator")
	case strings.TrimSpace(name) != name:
		return errors.New("file name starts or ends with white space")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return errors.New("file name contains a control or bidi-override character")
		}
	}
	return nil
}
