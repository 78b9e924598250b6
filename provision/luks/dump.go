package luks

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Dump is what Verify needs from `cryptsetup luksDump`: the header version,
// each data segment's cipher and each keyslot's volume key size and PBKDF.
type Dump struct {
	Version  int
	Segments []string // cipher of each data segment
	Keyslots []Keyslot
}

// Keyslot is one LUKS2 keyslot.
type Keyslot struct {
	ID      string
	KeyBits int // the volume key size this slot unlocks ("Key: 512 bits")
	PBKDF   string
}

// ParseDump reads luksDump's text. It fails on output it does not
// recognise rather than returning an empty Dump that would read as "no
// keyslots"; the sections it walks are stable across cryptsetup 2.x.
func ParseDump(out string) (Dump, error) {
	var d Dump
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			section = strings.TrimSuffix(strings.TrimSpace(line), ":")
			if k, v, ok := field(line); ok && k == "Version" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return Dump{}, fmt.Errorf("luksDump: version %q: %w", v, err)
				}
				d.Version = n
			}
			continue
		}
		d.addLine(section, line)
	}
	if d.Version == 0 {
		return Dump{}, fmt.Errorf("luksDump: no \"Version:\" line; not LUKS header output: %.80q", out)
	}
	return d, nil
}

func (d *Dump) addLine(section, line string) {
	k, v, ok := field(line)
	switch {
	case section == "Keyslots" && !strings.HasPrefix(line, "\t") && strings.HasSuffix(strings.TrimSpace(line), "luks2"):
		d.Keyslots = append(d.Keyslots, Keyslot{ID: strings.TrimSpace(k)})
	case !ok:
	case section == "Data segments" && k == "cipher":
		d.Segments = append(d.Segments, v)
	case section == "Keyslots" && len(d.Keyslots) > 0:
		ks := &d.Keyslots[len(d.Keyslots)-1]
		switch k {
		case "Key":
			ks.KeyBits, _ = strconv.Atoi(strings.TrimSuffix(v, " bits"))
		case "PBKDF":
			ks.PBKDF = v
		}
	}
}

// field splits "Key:   value" into its trimmed halves.
func field(line string) (string, string, bool) {
	k, v, ok := strings.Cut(line, ":")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}

// Problems lists every way the header differs from the policy, empty when
// it matches. All keyslots must use the policy's PBKDF: one weak slot is a
// weak volume.
func (d Dump) Problems(cipher string, keyBits int, pbkdf string) []string {
	var out []string
	if d.Version != 2 {
		out = append(out, fmt.Sprintf("LUKS version %d, want 2", d.Version))
	}
	if len(d.Segments) == 0 {
		out = append(out, "no data segment")
	}
	for _, c := range d.Segments {
		if c != cipher {
			out = append(out, fmt.Sprintf("segment cipher %s, want %s", c, cipher))
		}
	}
	if len(d.Keyslots) == 0 {
		out = append(out, "no keyslot")
	}
	for _, ks := range d.Keyslots {
		if ks.KeyBits != keyBits {
			out = append(out, fmt.Sprintf("keyslot %s: key %d bits, want %d", ks.ID, ks.KeyBits, keyBits))
		}
		if ks.PBKDF != pbkdf {
			out = append(out, fmt.Sprintf("keyslot %s: PBKDF %s, want %s", ks.ID, ks.PBKDF, pbkdf))
		}
	}
	return out
}
