package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// qemuImg runs one qemu-img binary. Errors carry the step, the command
// line and qemu-img's own last words, which are usually the whole story
// ("Could not open …", "Image is not in qcow2 format").
type qemuImg struct{ bin string }

func (q qemuImg) run(ctx context.Context, step string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, q.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := tail(stderr.String(), 2000)
		if msg == "" {
			msg = tail(stdout.String(), 2000)
		}
		return nil, fmt.Errorf("%s: %s %s: %w: %s", step, q.bin, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// info is the part of `qemu-img info --output json` Export needs.
type info struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

// info probes when format is empty. Probing is only ever done on the
// caller's input: a fixed VHD, for one, probes as raw (its only header is
// a footer), so outputs are read with their format named.
func (q qemuImg) info(ctx context.Context, step, format, path string) (info, error) {
	args := []string{"info", "--output", "json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := q.run(ctx, step, append(args, path)...)
	if err != nil {
		return info{}, err
	}
	var i info
	if err := json.Unmarshal(out, &i); err != nil {
		return info{}, fmt.Errorf("%s: read qemu-img info of %s: %w", step, path, err)
	}
	return i, nil
}

// populated is the number of bytes of the disk that hold data (not holes,
// not zero clusters): the OVF's populatedSize, which lets a hypervisor
// size a thin disk before it has read the stream.
func (q qemuImg) populated(ctx context.Context, step, format, path string) (int64, error) {
	out, err := q.run(ctx, step, "map", "--output", "json", "-f", format, path)
	if err != nil {
		return 0, err
	}
	return sumData(out)
}

// sumData adds up the extents of `qemu-img map --output json` that hold data.
func sumData(mapJSON []byte) (int64, error) {
	var extents []struct {
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
		Zero   bool  `json:"zero"`
	}
	if err := json.Unmarshal(mapJSON, &extents); err != nil {
		return 0, fmt.Errorf("read qemu-img map: %w", err)
	}
	var n int64
	for _, e := range extents {
		if e.Data && !e.Zero {
			n += e.Length
		}
	}
	return n, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
