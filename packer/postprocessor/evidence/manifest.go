package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/updates"
)

// ManifestFile is the manifest's name inside the evidence directory.
const ManifestFile = "manifest.json"

// Manifest ties an image's bytes to the policy and tool that proved it.
type Manifest struct {
	Images         []ImageFile `json:"images"`
	BaseImage      string      `json:"base_image"`
	PolicySHA256   string      `json:"policy_sha256"`
	BulwarkVersion string      `json:"bulwark_version"`
	// VerifiedWith is the version of bulwark that ran in the guest, from
	// the report; it differs from BulwarkVersion only on a mixed build.
	VerifiedWith string    `json:"verified_with"`
	Verified     time.Time `json:"verified"`
	BuildTime    time.Time `json:"build_time"`
	Failed       bool      `json:"failed"`
	// SecurityUpdatesPending is what updates.patched counted in the guest
	// when it verified: the image's patch level at build time, with the
	// age of the package lists in that finding's evidence. Absent when the
	// report has no readable count (the control did not run), never 0 by
	// default.
	SecurityUpdatesPending *int `json:"security_updates_pending,omitempty"`
}

// ImageFile is one artifact file.
type ImageFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// now is the clock; tests pin it.
var now = func() time.Time { return time.Now().UTC() }

func newManifest(images []string, base, policyHash string, r provision.Results) (*Manifest, error) {
	m := &Manifest{
		BaseImage: base, PolicySHA256: policyHash, BulwarkVersion: version.Version,
		VerifiedWith: r.Version, Verified: r.Finished, BuildTime: now(), Failed: r.Failed(),
	}
	m.SecurityUpdatesPending = pendingUpdates(r)
	for _, f := range images {
		img, err := hashFile(f)
		if err != nil {
			return nil, err
		}
		m.Images = append(m.Images, img)
	}
	return m, nil
}

// pendingUpdates reads updates.patched's count from the report.
func pendingUpdates(r provision.Results) *int {
	for _, f := range r.Findings {
		if f.ControlID == updates.PatchedID && f.Property == updates.PendingProperty {
			if n, err := strconv.Atoi(f.Actual); err == nil {
				return &n
			}
		}
	}
	return nil
}

func hashFile(path string) (ImageFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImageFile{}, fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return ImageFile{}, fmt.Errorf("artifact: hash %s: %w", path, err)
	}
	return ImageFile{Name: filepath.Base(path), SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// write stores the manifest atomically, so a reader never sees half of it.
func (m *Manifest) write(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}
