package token

import (
	"strings"
	"testing"
)

func TestNewIsRandom384Bits(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 64 {
			t.Fatalf("token %q has length %d, want 64 (384 bits base64url)", tok, len(tok))
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
		ph, err := Parse(tok)
		if err != nil || !Equal(ph, h) {
			t.Fatalf("Parse(New()) = %x, %v; want %x", ph, err, h)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _, _ := New()
	for name, s := range map[string]string{
		"empty":     "",
		"short":     good[:63],
		"long":      good + "A",
		"padding":   good[:62] + "==",
		"std-alpha": strings.Repeat("+", 64),
		"nul":       good[:63] + "\x00",
		"traversal": "../../../../etc/passwd" + strings.Repeat("A", 42),
	} {
		if _, err := Parse(s); err != ErrInvalid {
			t.Errorf("%s: Parse(%q) err = %v, want ErrInvalid", name, s, err)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	good, _, _ := New()
	f.Add(good)
	f.Add("")
	f.Add(strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		// Whatever parses must be exactly 64 url-safe chars and re-parse equal.
		if len(s) != 64 || strings.ContainsAny(s, "+/=\x00") {
			t.Fatalf("Parse accepted %q", s)
		}
		h2, _ := Parse(s)
		if !Equal(h, h2) {
			t.Fatal("Parse not deterministic")
		}
	})
}
