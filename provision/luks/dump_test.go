package luks

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

func defaultLUKS(t *testing.T) policies.LUKS {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return p.LUKS
}

// TestParseDump reads a header cryptsetup 2.6 wrote (testdata holds its
// luksDump output verbatim).
func TestParseDump(t *testing.T) {
	b, err := os.ReadFile("testdata/luksdump-argon2id-512.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDump(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := Dump{Version: 2, Segments: []string{"aes-xts-plain64"}, Keyslots: []Keyslot{{ID: "0", KeyBits: 512, PBKDF: "argon2id"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDump = %+v, want %+v", got, want)
	}
	if _, err := ParseDump("Device /dev/vdb is not a valid LUKS device.\n"); err == nil {
		t.Error("ParseDump accepted output without a LUKS header")
	}
}

func TestDumpProblems(t *testing.T) {
	good := Dump{Version: 2, Segments: []string{"aes-xts-plain64"}, Keyslots: []Keyslot{{ID: "0", KeyBits: 512, PBKDF: "argon2id"}}}
	tests := []struct {
		name string
		edit func(d *Dump)
		want string
	}{
		{"matches", func(*Dump) {}, ""},
		{"luks1", func(d *Dump) { d.Version = 1 }, "LUKS version 1, want 2"},
		{"cbc cipher", func(d *Dump) { d.Segments = []string{"aes-cbc-essiv:sha256"} }, "segment cipher aes-cbc-essiv:sha256, want aes-xts-plain64"},
		{"256-bit key", func(d *Dump) { d.Keyslots[0].KeyBits = 256 }, "keyslot 0: key 256 bits, want 512"},
		{"second slot pbkdf2", func(d *Dump) {
			d.Keyslots = append(d.Keyslots, Keyslot{ID: "1", KeyBits: 512, PBKDF: "pbkdf2"})
		}, "keyslot 1: PBKDF pbkdf2, want argon2id"},
		{"no keyslot", func(d *Dump) { d.Keyslots = nil }, "no keyslot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good
			d.Keyslots = append([]Keyslot(nil), good.Keyslots...)
			tt.edit(&d)
			got := strings.Join(d.Problems("aes-xts-plain64", 512, "argon2id"), "; ")
			if got != tt.want {
				t.Errorf("Problems = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHeaderFromCryptsetup formats plain files with real cryptsetup (no
// device-mapper needed to write a header) and judges their luksDump: the
// policy's parameters pass, each weaker one fails with the header quoted.
func TestHeaderFromCryptsetup(t *testing.T) {
	testutil.RequireTools(t, "cryptsetup")
	l := defaultLUKS(t)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Fixed low costs keep the test fast; they do not change the PBKDF name.
	argon := []string{"--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32768"}
	tests := []struct {
		name   string
		args   []string // luksFormat arguments; nil: a file that is not LUKS
		status provision.Status
		actual string
	}{
		{"policy parameters", append([]string{"--type", "luks2", "--cipher", "aes-xts-plain64", "--key-size", "512"}, argon...), provision.Pass, "LUKS2"},
		{"256-bit key", append([]string{"--type", "luks2", "--cipher", "aes-xts-plain64", "--key-size", "256"}, argon...), provision.Fail, "key 256 bits"},
		{"pbkdf2", []string{"--type", "luks2", "--cipher", "aes-xts-plain64", "--key-size", "512", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}, provision.Fail, "PBKDF pbkdf2"},
		{"luks1", []string{"--type", "luks1", "--cipher", "aes-xts-plain64", "--key-size", "512", "--pbkdf-force-iterations", "1000"}, provision.Fail, "LUKS version 1"},
		{"not LUKS", nil, provision.Fail, "unparsable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, make([]byte, 20<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.args != nil {
				args := append(append([]string{"luksFormat", "--batch-mode"}, tt.args...), "--key-file", key, img)
				if out, err := exec.Command("cryptsetup", args...).CombinedOutput(); err != nil {
					t.Fatalf("cryptsetup %v: %v\n%s", args, err, out)
				}
			}
			out, _ := exec.Command("cryptsetup", "luksDump", img).CombinedOutput()
			f := headerFinding(volumeMeta.Finding("LUKS header", "policy"), "cryptsetup luksDump "+img, string(out), l)
			if f.Status != tt.status || !strings.Contains(f.Actual, tt.actual) {
				t.Fatalf("finding %s %q (%s); want %s containing %q", f.Status, f.Actual, f.Reason, tt.status, tt.actual)
			}
			if f.ControlID != "luks.volume" || len(f.Evidence) == 0 || f.Evidence[0].Source != "cryptsetup luksDump "+img {
				t.Errorf("finding does not name the control and the evidence: %+v", f)
			}
		})
	}
}

func TestFormatArgs(t *testing.T) {
	l := defaultLUKS(t)
	want := "luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 --pbkdf argon2id --key-file /run/bulwark/luks.key /dev/vdb"
	if got := strings.Join(formatArgs(l, l.KeyFile), " "); got != want {
		t.Errorf("default policy:\n got %s\nwant %s", got, want)
	}
	l.PBKDFMemoryKiB = 65536
	if got := strings.Join(formatArgs(l, l.KeyFile), " "); !strings.Contains(got, "--pbkdf argon2id --pbkdf-memory 65536 --key-file") {
		t.Errorf("pbkdf_memory_kib not passed: %s", got)
	}
}

func TestMounts(t *testing.T) {
	ms := parseMounts(`/dev/vda1 / ext4 rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
/dev/mapper/bulwark-data /srv/bulwark ext4 rw,nosuid,nodev 0 0
/dev/vdc /srv/bulwark ext4 rw 0 0
/dev/vdd /mnt/with\040space ext4 rw 0 0
`)
	tests := []struct {
		path, wantPoint, wantType string
	}{
		{"/run/bulwark/luks.key", "/run", "tmpfs"},
		{"/etc/bulwark/luks.key", "/", "ext4"},
		{"/srv/bulwark/x", "/srv/bulwark", "ext4"},
		{"/runx/key", "/", "ext4"},
	}
	for _, tt := range tests {
		if m := containing(ms, tt.path); m.point != tt.wantPoint || m.fstype != tt.wantType {
			t.Errorf("containing(%s) = %s %s, want %s %s", tt.path, m.point, m.fstype, tt.wantPoint, tt.wantType)
		}
	}
	if m, _ := mountAt(ms, "/srv/bulwark"); m.source != "/dev/vdc" {
		t.Errorf("mountAt picked %s, want the topmost /dev/vdc", m.source)
	}
	if _, ok := mountAt(ms, "/mnt/with space"); !ok {
		t.Error("octal-escaped mount point not decoded")
	}
}

// TestFirstbootPolicyLoads: the policy slice the unit passes to `bulwark
// firstboot` must load with the strict loader and carry the build's values.
func TestFirstbootPolicyLoads(t *testing.T) {
	l := defaultLUKS(t)
	l.PBKDFMemoryKiB = 65536
	b, err := renderPolicy(l, "/srv/bulwark/transfer")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadBytes(PolicyFile, b)
	if err != nil {
		t.Fatalf("rendered %s does not load: %v\n%s", PolicyFile, err, b)
	}
	if p.LUKS != l || p.Transfer.DataDir != "/srv/bulwark/transfer" {
		t.Errorf("round trip: luks %+v data_dir %s; want %+v", p.LUKS, p.Transfer.DataDir, l)
	}
}

// TestParseDumpTokens reads the tokens systemd-cryptenroll leaves: the
// fixture is luksDump of a header with a recovery key and a TPM2 slot, as
// cryptsetup 2.7 prints it with systemd's token plugin loaded (Debian 13).
func TestParseDumpTokens(t *testing.T) {
	b, err := os.ReadFile("testdata/luksdump-tpm2-recovery.txt")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDump(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !d.HasToken(TokenTPM2) || !d.HasToken(TokenRecovery) {
		t.Fatalf("tokens = %+v, want %s and %s", d.Tokens, TokenTPM2, TokenRecovery)
	}
	types := map[string]bool{}
	for _, ks := range d.Keyslots {
		types[d.SlotType(ks.ID)] = true
	}
	if len(d.Keyslots) != 2 || !types[TokenTPM2] || !types[TokenRecovery] {
		t.Errorf("keyslots %+v typed %v; want one TPM2 and one recovery slot", d.Keyslots, types)
	}
	if p := append(d.Problems("aes-xts-plain64", 512, "argon2id"), d.SourceProblems(policies.KeySourceTPM2, SealPCRs)...); len(p) != 0 {
		t.Errorf("an enrolled header has problems: %v", p)
	}
}

func TestSourceProblems(t *testing.T) {
	tpm := Token{ID: "0", Type: TokenTPM2, Keyslots: []string{"0"}, PCRs: "7"}
	rec := Token{ID: "1", Type: TokenRecovery, Keyslots: []string{"1"}}
	slots := []Keyslot{{ID: "0", KeyBits: 512, PBKDF: "pbkdf2"}, {ID: "1", KeyBits: 512, PBKDF: "argon2id"}}
	tests := []struct {
		name   string
		src    string
		slots  []Keyslot
		tokens []Token
		want   string
	}{
		{"tpm2 enrolled", policies.KeySourceTPM2, slots, []Token{tpm, rec}, ""},
		{"tpm2 without recovery", policies.KeySourceTPM2, slots[:1], []Token{tpm}, "no recovery key (systemd-recovery token)"},
		{"tpm2 sealed to other PCRs", policies.KeySourceTPM2, slots, []Token{{ID: "0", Type: TokenTPM2, Keyslots: []string{"0"}, PCRs: "0+7"}, rec},
			`token 0: TPM2 sealed to PCRs "0+7", want "7"`},
		{"enrolment key left behind", policies.KeySourceTPM2, append(slots, Keyslot{ID: "2", KeyBits: 512, PBKDF: "argon2id"}), []Token{tpm, rec},
			"keyslot 2: a passphrase no token accounts for"},
		{"no tpm token", policies.KeySourceTPM2, slots[1:], []Token{rec}, "no systemd-tpm2 token: the TPM cannot unlock it"},
		{"delivered", policies.KeySourceDelivered, slots[1:], nil, ""},
		{"delivered but only tokens", policies.KeySourceDelivered, slots, []Token{tpm, rec}, "no passphrase keyslot: the delivered key cannot open it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Dump{Version: 2, Segments: []string{"aes-xts-plain64"}, Keyslots: tt.slots, Tokens: tt.tokens}
			if got := strings.Join(d.SourceProblems(tt.src, SealPCRs), "; "); got != tt.want {
				t.Errorf("SourceProblems = %q, want %q", got, tt.want)
			}
		})
	}
	// The TPM2 and recovery slots' minimal PBKDF2 is systemd's choice for
	// 256-bit random secrets, not a weak slot; the same PBKDF on a
	// passphrase slot is.
	d := Dump{Version: 2, Segments: []string{"aes-xts-plain64"}, Tokens: []Token{tpm, rec},
		Keyslots: []Keyslot{slots[0], {ID: "1", KeyBits: 512, PBKDF: "pbkdf2"}, {ID: "2", KeyBits: 512, PBKDF: "pbkdf2"}}}
	if got := strings.Join(d.Problems("aes-xts-plain64", 512, "argon2id"), "; "); got != "keyslot 2: PBKDF pbkdf2, want argon2id" {
		t.Errorf("Problems = %q; want only the passphrase slot's PBKDF", got)
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/bulwark":        "srv-bulwark",
		"/srv/bulwark/":       "srv-bulwark",
		"/var/lib/my-data":    `var-lib-my\x2ddata`,
		"/srv/.hidden":        "srv-.hidden",
		"/mnt/with space":     `mnt-with\x20space`,
		"/":                   "-",
		"/srv//bulwark/x.y_z": "srv-bulwark-x.y_z",
	} {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRecoveryKey(t *testing.T) {
	const key = "fjkcvrhu-dkcbrhiu-lkglrnkl-bhkflhvl-cbedglrl-gtijunnc-hrnhgvjr-bvrhvjlk"
	if got, err := parseRecoveryKey(key + "\n"); err != nil || got != key {
		t.Errorf("parseRecoveryKey(key) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "A secret recovery key has been generated", key[:70], strings.ToUpper(key), key + "\n" + key} {
		if _, err := parseRecoveryKey(bad); err == nil {
			t.Errorf("parseRecoveryKey(%q) accepted it", bad)
		}
	}
}
