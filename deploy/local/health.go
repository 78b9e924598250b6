//go:build linux

package local

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// waitHealthy polls until the appliance answers, QEMU dies or the boot
// timeout passes, reporting progress. A bare TCP connect proves nothing
// here: QEMU's user networking accepts on the host port before the guest
// listens, so only an application answer counts.
func waitHealthy(ctx context.Context, st MachineState, d qemu.Detached, log logFunc) error {
	limit := defaultBootTimeout
	if st.BootTimeoutSecond > 0 {
		limit = time.Duration(st.BootTimeoutSecond) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	probe, target := healthProbe(st, d)
	start, last := time.Now(), error(nil)
	for tick := 0; ; tick++ {
		if last = probe(ctx); last == nil {
			log(false, "healthy (%s) after %s", target, time.Since(start).Round(time.Second))
			return nil
		}
		if !d.Running() {
			return fmt.Errorf("QEMU exited before %s was healthy; console %s", target, d.ConsoleLog)
		}
		if tick%6 == 0 {
			log(true, "waiting for %s (%s): %v", target, time.Since(start).Round(time.Second), last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s (last: %v); console %s", target, limit, last, d.ConsoleLog)
		case <-time.After(5 * time.Second):
		}
	}
}

func healthProbe(st MachineState, d qemu.Detached) (func(context.Context) error, string) {
	if st.Health == "ssh" {
		addr := fmt.Sprintf("127.0.0.1:%d", d.Ports[22])
		return func(ctx context.Context) error { return SSHBanner(ctx, addr) }, "ssh " + addr
	}
	path := st.HealthPath
	if path == "" {
		path = "/healthz"
	}
	u := fmt.Sprintf("https://127.0.0.1:%d%s", d.Ports[443], path)
	return func(ctx context.Context) error { return httpsHealth(ctx, u) }, u
}

// SSHBanner reads the server's identification line: only a listening sshd
// in the guest sends one. It waits at most 10 s, or until ctx's deadline
// if that is sooner.
func SSHBanner(ctx context.Context, addr string) error {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no SSH banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	return nil
}

// Health is transferd's /healthz document (transfer/api.Health; kept
// apart so this package does not pull in the service's dependencies, and
// tied to it by TestHealthMatchesTransferd).
type Health struct {
	Service  string `json:"service"`
	Status   string `json:"status"`
	Database string `json:"database"`
	Clamd    string `json:"clamd"`
	Disk     string `json:"disk"`
}

// healthService is what transferd puts in Health.Service.
const healthService = "transferd"

// httpsHealth GETs the health endpoint and accepts only transferd's own
// health document with a 200: an answer from nginx alone (a 502 while
// transferd is down, a default page) is not the service's health. The
// instance's certificate is self-signed and minted in the guest, so this
// one probe (and only it) skips verification; it never sends credentials.
func httpsHealth(ctx context.Context, u string) error {
	_, err := FetchHealth(ctx, u)
	return err
}

// FetchHealth GETs u and decodes transferd's health document; it fails
// unless the status is 200 and the document names transferd.
func FetchHealth(ctx context.Context, u string) (Health, error) {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // health probe of a fresh self-signed instance
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Health{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Health{}, fmt.Errorf("GET %s: read body: %w", u, err)
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil || h.Service != healthService {
		return Health{}, fmt.Errorf("GET %s: %s, not transferd's health document: %.200q", u, resp.Status, body)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("GET %s: %s: transferd reports %s (database %s, clamd %s, disk %s)", u, resp.Status, h.Status, h.Database, h.Clamd, h.Disk)
	}
	return h, nil
}
