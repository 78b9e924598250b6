package luks

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Dump is what Verify needs from `cryptsetup luksDump`: the header version,
// each data segment's cipher, each keyslot's volume key size and PBKDF,
// and the tokens (systemd-cryptenroll's TPM2 and recovery enrolments) that
// say what each keyslot is for.
type Dump struct {
	Version  int
	Segments []string // cipher of each data segment
	Keyslots []Keyslot
	Tokens   []Token
}

// Token is one LUKS2 token.
type Token struct {
	ID       string
	Type     string   // e.g. systemd-tpm2, systemd-recovery
	Keyslots []string // the keyslots it unlocks
	PCRs     string   // systemd-tpm2: the PCRs it is sealed to ("7", "0+7")
}

// HasToken reports whether the header holds a token of type typ.
func (d Dump) HasToken(typ string) bool {
	for _, t := range d.Tokens {
		if t.Type == typ {
			return true
		}
	}
	return false
}

// SlotType is what unlocks keyslot id: the type of the token bound to it,
// or "passphrase" for a slot no token names (a key someone holds: the
// delivered key, or a typed passphrase).
func (d Dump) SlotType(id string) string {
	for _, t := range d.Tokens {
		for _, k := range t.Keyslots {
			if k == id {
				return t.Type
			}
		}
	}
	return "passphrase"
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
	case section == "Tokens" && ok && !strings.HasPrefix(line, "\t"):
		d.Tokens = append(d.Tokens, Token{ID: k, Type: v})
	case section == "Tokens" && ok && len(d.Tokens) > 0:
		tk := &d.Tokens[len(d.Tokens)-1]
		switch k {
		case "Keyslot":
			tk.Keyslots = append(tk.Keyslots, v)
		case "tpm2-hash-pcrs":
			tk.PCRs = v
		}
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
// it matches. Every passphrase slot must use the policy's PBKDF: one weak
// slot is a weak volume. The slots systemd-cryptenroll makes for the TPM
// and the recovery key are the exception it makes on purpose: each secret
// is 256 random bits (sealed in the TPM, or the generated recovery key),
// which no password-guessing cost could strengthen, so each gets a
// minimal PBKDF2 (measured on Debian 13: pbkdf2, 1000 iterations).
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
		if t := d.SlotType(ks.ID); ks.PBKDF != pbkdf && t != TokenTPM2 && t != TokenRecovery {
			out = append(out, fmt.Sprintf("keyslot %s: PBKDF %s, want %s", ks.ID, ks.PBKDF, pbkdf))
		}
	}
	return out
}

// SourceProblems lists how the enrolments differ from key source src.
// tpm2: a TPM2 token sealed to exactly pcrs, a recovery key, and no other
// way in (a passphrase slot left over from enrolment is a key that was on
// the instance). delivered: at least one passphrase slot, the delivered key.
func (d Dump) SourceProblems(src, pcrs string) []string {
	var out []string
	switch src {
	case policies.KeySourceTPM2:
		tpm := 0
		for _, t := range d.Tokens {
			if t.Type == TokenTPM2 {
				tpm++
				if t.PCRs != pcrs {
					out = append(out, fmt.Sprintf("token %s: TPM2 sealed to PCRs %q, want %q", t.ID, t.PCRs, pcrs))
				}
			}
		}
		if tpm == 0 {
			out = append(out, "no systemd-tpm2 token: the TPM cannot unlock it")
		}
		if !d.HasToken(TokenRecovery) {
			out = append(out, "no recovery key (systemd-recovery token)")
		}
		for _, ks := range d.Keyslots {
			if d.SlotType(ks.ID) == "passphrase" {
				out = append(out, "keyslot "+ks.ID+": a passphrase no token accounts for")
			}
		}
	case policies.KeySourceDelivered:
		n := 0
		for _, ks := range d.Keyslots {
			if d.SlotType(ks.ID) == "passphrase" {
				n++
			}
		}
		if n == 0 {
			out = append(out, "no passphrase keyslot: the delivered key cannot open it")
		}
	}
	return out
}
