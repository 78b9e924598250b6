package harden

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// fakeGuest is a communicator backed by an in-memory file system. The
// SDK's MockCommunicator keeps only the last upload and command; the
// provisioner's contract is the whole sequence, so this one records all of
// them. A guest cannot exist in a unit test; the end-to-end test runs the
// provisioner against a real QEMU guest.
type fakeGuest struct {
	mu       sync.Mutex
	files    map[string]string
	modes    map[string]os.FileMode
	commands []string
	// respond returns a command's exit status and output, and may write
	// files (bulwark verify writes its report).
	respond func(g *fakeGuest, cmd string) (status int, stdout string)
}

func newFakeGuest() *fakeGuest {
	return &fakeGuest{files: map[string]string{}, modes: map[string]os.FileMode{}}
}

func (g *fakeGuest) Start(_ context.Context, rc *packersdk.RemoteCmd) error {
	g.mu.Lock()
	g.commands = append(g.commands, rc.Command)
	g.mu.Unlock()
	status, out := 0, ""
	if g.respond != nil {
		status, out = g.respond(g, rc.Command)
	}
	go func() {
		if rc.Stdout != nil && out != "" {
			io.WriteString(rc.Stdout, out)
		}
		rc.SetExited(status)
	}()
	return nil
}

func (g *fakeGuest) Upload(path string, r io.Reader, fi *os.FileInfo) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.files[path] = string(b)
	if fi != nil {
		g.modes[path] = (*fi).Mode()
	}
	return nil
}

func (g *fakeGuest) UploadDir(string, string, []string) error {
	return fmt.Errorf("fakeGuest: UploadDir not expected")
}

func (g *fakeGuest) Download(path string, w io.Writer) error {
	g.mu.Lock()
	data, ok := g.files[path]
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("scp: %s: No such file or directory", path)
	}
	_, err := io.Copy(w, bytes.NewBufferString(data))
	return err
}

func (g *fakeGuest) DownloadDir(string, string, []string) error {
	return fmt.Errorf("fakeGuest: DownloadDir not expected")
}

func (g *fakeGuest) write(path, data string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.files[path] = data
}

// commandWith returns the first recorded command containing s.
func (g *fakeGuest) commandWith(s string) string {
	for _, c := range g.commands {
		if strings.Contains(c, s) {
			return c
		}
	}
	return ""
}
