package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// Key delivery on EC2. An instance has no fw_cfg; its user data is served
// by the instance metadata service. firstboot reads it there itself, with
// IMDSv2 (a session token first, which a forwarded or SSRF'd GET cannot
// obtain), and keeps the key in /run only, until the volume is open. The
// appliance's Debian image has no cloud-init, so no agent stores the user
// data on the root disk either (cloud-init keeps it in /var/lib/cloud).
const (
	// IMDSEndpoint is the link-local metadata address of every EC2 instance.
	IMDSEndpoint  = "http://169.254.169.254"
	imdsTokenPath = "/latest/api/token"
	imdsUserData  = "/latest/user-data"
	// imdsTokenTTL is short: the token is used at once, by this process.
	imdsTokenTTL = "60"
)

// ec2Markers are the files that say this is an EC2 instance (Nitro:
// DMI vendor; older Xen instances: the hypervisor uuid starts with ec2),
// so no other platform waits on an address nobody answers.
var ec2Markers = []struct{ path, prefix string }{
	{"/sys/class/dmi/id/sys_vendor", "Amazon EC2"},
	{"/sys/class/dmi/id/bios_vendor", "Amazon EC2"},
	{"/sys/hypervisor/uuid", "ec2"},
}

// onEC2 reports whether h is an EC2 instance, and what said so.
func onEC2(h host.Host) (bool, string) {
	for _, m := range ec2Markers {
		if b, err := h.ReadFile(m.path); err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), m.prefix) {
			return true, m.path + ": " + strings.TrimSpace(string(b))
		}
	}
	return false, ""
}

// errNoUserData is IMDS answering 404: the instance was launched without
// user data, so no key will come.
var errNoUserData = errors.New("the instance has no user data (IMDS answered 404)")

// imdsFetch reads the user data from the metadata service at endpoint,
// retrying until ctx ends while the service is unreachable or failing
// (firstboot may run before the network is up). A 404 or a refused token
// ends it at once: retrying cannot change that answer.
func imdsFetch(ctx context.Context, client *http.Client, endpoint string) ([]byte, error) {
	var last error
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		doc, err := imdsOnce(ctx, client, endpoint)
		var perm permanentError
		if err == nil || errors.Is(err, errNoUserData) || errors.As(err, &perm) {
			return doc, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("instance metadata at %s: %w (gave up: %v)", endpoint, last, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// permanentError is an IMDS answer a retry would only repeat.
type permanentError struct{ error }

func imdsOnce(ctx context.Context, client *http.Client, endpoint string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+imdsTokenPath, nil)
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", imdsTokenTTL)
	token, err := imdsDo(client, req)
	if err != nil {
		return nil, fmt.Errorf("IMDSv2 session token: %w", err)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, endpoint+imdsUserData, nil)
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("X-aws-ec2-metadata-token", string(token))
	doc, err := imdsDo(client, req)
	if err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	return doc, nil
}

// imdsDo returns a 200's body (at most 64 KiB, EC2's user-data limit
// with room); 404 is errNoUserData; 400, 401 and 403 (no or a refused
// token, IMDS turned off) are permanent; anything else may pass.
func imdsDo(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNoUserData
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, permanentError{fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)}
	default:
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
}
