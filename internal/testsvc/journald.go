//go:build linux

package testsvc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// JournalSocket is where journald takes native-protocol records; go-systemd's
// journal package (and so transferd's audit logger) sends there.
const JournalSocket = "/run/systemd/journal/socket"

// Journal is a systemd-journald listening on JournalSocket, read back with
// journalctl as an operator would.
type Journal struct {
	// Owned is true when the test started this journald (and may stop it).
	Owned bool
	stop  func()
}

// Journald returns the journald on JournalSocket: the machine's own when
// one answers there, else Debian's systemd-journald started for the test
// (these test machines run no systemd, and journald creates its sockets
// itself when none are passed to it) and stopped when the test ends.
func Journald(t testing.TB) *Journal {
	t.Helper()
	if journalAnswers() {
		return &Journal{stop: func() {}}
	}
	testutil.RequireTools(t, "journalctl")
	d := startDaemon(t, exec.Command("/lib/systemd/systemd-journald"))
	for deadline := time.Now().Add(15 * time.Second); !journalAnswers(); time.Sleep(50 * time.Millisecond) {
		select {
		case <-d.done:
			t.Fatalf("testsvc: systemd-journald exited: %s", d.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testsvc: systemd-journald: %s does not answer after 15 s: %s", JournalSocket, d.out.String())
		}
	}
	return &Journal{Owned: true, stop: d.stop}
}

// Stop terminates a journald the test started (a journald that is gone,
// as the sender sees it); safe to call more than once.
func (j *Journal) Stop() { j.stop() }

func journalAnswers() bool {
	c, err := net.Dial("unixgram", JournalSocket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Records returns the records written since since that carry every
// FIELD=value in matches, each as its fields, waiting up to 10 s for at
// least want of them (journald stores what it receives asynchronously).
func (j *Journal) Records(t testing.TB, since time.Time, want int, matches ...string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		args := append([]string{"--no-pager", "-o", "json", "--since", "@" + strconv.FormatInt(since.Unix()-1, 10)}, matches...)
		out, err := exec.Command("journalctl", args...).Output()
		if err != nil {
			t.Fatalf("testsvc: journalctl %v: %v", args, err)
		}
		recs = recs[:0]
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("testsvc: journalctl JSON %q: %v", sc.Text(), err)
			}
			recs = append(recs, r)
		}
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
	}
}
