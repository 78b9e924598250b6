package luks

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Key source tpm2. On the first boot the blank device is formatted with a
// random enrolment key that only ever exists on /run (tmpfs); systemd-
// cryptenroll then adds a recovery key (shown once on the console, kept
// nowhere on the instance) and a TPM2 key slot sealed to PCR 7, and the
// enrolment key's slot is removed. Every later boot unlocks with the TPM
// alone. PCR 7 is the firmware's measurement of the Secure Boot policy
// (on or off, and the PK/KEK/db/dbx it enforces): the volume opens only
// on this instance's TPM while Secure Boot is as it was at the first
// boot. A TPM that refuses leaves the volume locked, and the services
// that live on it down, until `bulwark unlock --recovery`.
const (
	// TPMDevice is the kernel's TPM 2.0 resource manager.
	TPMDevice = "/dev/tpmrm0"
	// SealPCRs are the PCRs the volume key is sealed to.
	SealPCRs = "7"
	// enrollKeyFile holds the random key the device is formatted with,
	// for the seconds the enrolment takes.
	enrollKeyFile = "/run/bulwark/enroll.key"
	// recoveryKeyFile holds the typed recovery key while cryptsetup
	// reads it.
	recoveryKeyFile = "/run/bulwark/recovery.key"
	// StatusFile says why the volume is locked (JSON, see Status), for
	// the health endpoint and the operator; it is on /run, so it describes
	// this boot only. It is removed once the volume is mounted.
	StatusFile = "/run/bulwark/data-volume.json"
)

// Token types systemd-cryptenroll writes into the LUKS2 header.
const (
	TokenTPM2     = "systemd-tpm2"
	TokenRecovery = "systemd-recovery"
)

// LockedError is a volume left locked on purpose: the services on it stay
// down (fail closed) and the operator is told why and what to do.
type LockedError struct {
	Device string
	Reason string // what refused, in the operator's words
	Detail string // the tool's own message, when there is one
	Remedy string
}

func (e *LockedError) Error() string {
	s := fmt.Sprintf("data volume %s stays locked: %s", e.Device, e.Reason)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s + "; " + e.Remedy
}

// Status is what StatusFile holds.
type Status struct {
	State  string `json:"state"` // "locked"
	Device string `json:"device"`
	Reason string `json:"reason"`
	Remedy string `json:"remedy"`
}

const recoveryRemedy = "services on it stay down; open it with `bulwark unlock --recovery` and the recovery key shown at the first boot"

// openTPM2 formats and enrols a blank device, then opens it with the TPM.
func openTPM2(ctx context.Context, h host.Host, l policies.LUKS, console io.Writer) error {
	if _, err := h.Stat(TPMDevice); err != nil {
		return &LockedError{Device: l.Device, Reason: "no TPM 2.0 device (" + TPMDevice + "); policy luks.key_source is tpm2",
			Detail: err.Error(), Remedy: "give the instance a TPM 2.0 (NitroTPM, vTPM, swtpm), or build with key_source delivered; " + recoveryRemedy}
	}
	d, isLUKS, err := readHeader(ctx, h, l.Device)
	if err != nil {
		return err
	}
	if !isLUKS {
		if err := enroll(ctx, h, l, console); err != nil {
			return err
		}
		if d, _, err = readHeader(ctx, h, l.Device); err != nil {
			return err
		}
	}
	if !d.HasToken(TokenTPM2) {
		// A header without our tokens is an interrupted first boot (the
		// seconds between luksFormat and enrolment) or a volume from
		// another key source; either way reformatting could destroy data.
		return &LockedError{Device: l.Device, Reason: "its LUKS2 header has no " + TokenTPM2 + " token (an interrupted first boot, or a volume made with another key source)",
			Remedy: "if it holds no data, erase it (cryptsetup erase, then wipefs -a) and reboot; otherwise " + recoveryRemedy}
	}
	err = h.Exec(ctx, "unlock the data volume with the TPM", "cryptsetup", "open", "--token-only", "--token-type", TokenTPM2, l.Device, MapperName)
	if err != nil {
		return &LockedError{Device: l.Device,
			Reason: "the TPM would not unseal the volume key: PCR " + SealPCRs + " (the Secure Boot state and keys) differs from the first boot's, or this is not the instance's TPM",
			Detail: oneLine(err), Remedy: recoveryRemedy}
	}
	return nil
}

// readHeader returns the parsed header, or isLUKS false for a device with
// no LUKS2 header, which it refuses unless the device is blank.
func readHeader(ctx context.Context, h host.Host, dev string) (Dump, bool, error) {
	if _, err := h.Query(ctx, "cryptsetup", "isLuks", "--type", "luks2", dev); err != nil {
		sig, berr := blkidType(ctx, h, dev)
		if berr != nil {
			return Dump{}, false, fmt.Errorf("firstboot: probe %s: %w", dev, berr)
		}
		if sig != "" {
			return Dump{}, false, fmt.Errorf("firstboot: %s holds %s, not LUKS2; refusing to format it (wipe it deliberately with wipefs -a if it is scratch)", dev, sig)
		}
		return Dump{}, false, nil
	}
	out, err := h.Query(ctx, "cryptsetup", "luksDump", dev)
	if err != nil {
		return Dump{}, true, fmt.Errorf("firstboot: luksDump %s: %w", dev, err)
	}
	d, err := ParseDump(string(out))
	if err != nil {
		return Dump{}, true, fmt.Errorf("firstboot: %s: %w", dev, err)
	}
	return d, true, nil
}

// enroll formats the blank device and enrols the recovery key (shown on
// the console before anything else can go wrong) and the TPM, then removes
// the enrolment key's slot. The console must be writable first: a
// recovery key nobody saw is a volume nobody can recover.
func enroll(ctx context.Context, h host.Host, l policies.LUKS, console io.Writer) error {
	if console == nil {
		return errors.New("firstboot: no console to show the recovery key on; refusing to encrypt")
	}
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("firstboot: enrolment key: %w", err)
	}
	if err := h.WriteFile(enrollKeyFile, key, 0o400); err != nil {
		return fmt.Errorf("firstboot: write enrolment key %s: %w", enrollKeyFile, err)
	}
	defer h.Remove(enrollKeyFile) //nolint:errcheck // best effort on tmpfs; the slot is gone below
	if err := h.Exec(ctx, "encrypt the blank data device", "cryptsetup", formatArgs(l, enrollKeyFile)...); err != nil {
		return fmt.Errorf("firstboot: luksFormat %s: %w", l.Device, err)
	}
	unlock := "--unlock-key-file=" + enrollKeyFile
	// systemd-cryptenroll prints the recovery key alone on stdout (its
	// explanation goes to stderr, and so to the journal: the key does not).
	out, err := h.Query(ctx, "systemd-cryptenroll", unlock, "--recovery-key", l.Device)
	if err != nil {
		return fmt.Errorf("firstboot: enrol a recovery key on %s: %w", l.Device, err)
	}
	rk, err := parseRecoveryKey(string(out))
	if err != nil {
		return fmt.Errorf("firstboot: systemd-cryptenroll --recovery-key: %w", err)
	}
	if _, err := io.WriteString(console, recoveryBanner(l.Device, rk)); err != nil {
		return fmt.Errorf("firstboot: show the recovery key on the console: %w", err)
	}
	if err := h.Exec(ctx, "seal the volume key to the TPM (PCR "+SealPCRs+")", "systemd-cryptenroll", unlock,
		"--tpm2-device=auto", "--tpm2-pcrs="+SealPCRs, l.Device); err != nil {
		return fmt.Errorf("firstboot: enrol the TPM on %s: %w", l.Device, err)
	}
	if err := h.Exec(ctx, "remove the enrolment key's slot", "cryptsetup", "luksRemoveKey", "--batch-mode", "--key-file", enrollKeyFile, l.Device); err != nil {
		return fmt.Errorf("firstboot: remove the enrolment key from %s: %w", l.Device, err)
	}
	return nil
}

// RecoveryKeyLine matches a systemd recovery key: 8 groups of 8 modhex
// characters (a keyboard-layout-independent alphabet), dash-separated.
var RecoveryKeyLine = regexp.MustCompile(`^[cbdefghijklnrtuv]{8}(-[cbdefghijklnrtuv]{8}){7}$`)

func parseRecoveryKey(out string) (string, error) {
	k := strings.TrimSpace(out)
	if !RecoveryKeyLine.MatchString(k) {
		return "", fmt.Errorf("output is not one recovery key (%d bytes)", len(out))
	}
	return k, nil
}

func recoveryBanner(dev, key string) string {
	rule := strings.Repeat("=", 72)
	return "\r\n" + rule + "\r\n" +
		"bulwark: data volume " + dev + " is encrypted and sealed to this instance's TPM (PCR " + SealPCRs + ").\r\n" +
		"RECOVERY KEY, shown this once and stored nowhere on the instance:\r\n\r\n" +
		"    " + key + "\r\n\r\n" +
		"Keep it offline. If the TPM ever refuses (Secure Boot turned off, firmware\r\n" +
		"keys changed, the disk moved), open the volume with: bulwark unlock --recovery\r\n" +
		rule + "\r\n"
}

// LockedBanner is what the console shows when the volume stays locked.
func LockedBanner(e *LockedError) string {
	return "\r\nbulwark: DATA VOLUME LOCKED: " + e.Reason + ".\r\nbulwark: " + e.Remedy + ".\r\n"
}

// writeStatus records why the volume is locked in StatusFile.
func writeStatus(h host.Host, e *LockedError) error {
	b, err := json.Marshal(Status{State: "locked", Device: e.Device, Reason: e.Reason, Remedy: e.Remedy})
	if err != nil {
		return err
	}
	return h.WriteFile(StatusFile, append(b, '\n'), 0o644)
}

// Recover opens the volume with the recovery key (`bulwark unlock
// --recovery`). The key passes through a root-only file on /run for the
// second cryptsetup reads it. The caller then restarts the firstboot unit,
// which mounts the volume and starts what was held back.
func Recover(ctx context.Context, h host.Host, l policies.LUKS, key string) error {
	if !h.Live() {
		return fmt.Errorf("unlock: runs on the booted instance only, not on the offline root %s", h.Root())
	}
	key = strings.TrimSpace(key)
	if !RecoveryKeyLine.MatchString(key) {
		return errors.New("unlock: that is not a recovery key (8 groups of 8 letters from cbdefghijklnrtuv, joined by dashes)")
	}
	if _, err := h.Stat(MapperPath); err == nil {
		return nil // already open: nothing to do, and the caller says so
	}
	if _, isLUKS, err := readHeader(ctx, h, l.Device); err != nil {
		return err
	} else if !isLUKS {
		return fmt.Errorf("unlock: %s is blank: there is nothing to recover (the first boot formats it)", l.Device)
	}
	if err := h.WriteFile(recoveryKeyFile, []byte(key), 0o400); err != nil {
		return fmt.Errorf("unlock: write %s: %w", recoveryKeyFile, err)
	}
	defer h.Remove(recoveryKeyFile) //nolint:errcheck // tmpfs; removed on every path
	if err := h.Exec(ctx, "unlock the data volume with the recovery key", "cryptsetup", "open", "--key-file", recoveryKeyFile, l.Device, MapperName); err != nil {
		return fmt.Errorf("unlock: %s refused the recovery key: %w", l.Device, err)
	}
	return nil
}

// oneLine is an error's message on one line, for a console banner.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
