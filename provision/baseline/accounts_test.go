//go:build linux

package baseline

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestHomesFromPasswd: a login-shell account's home is checked where it
// lives, but only when the account owns it; a shared system directory
// named as a home (sync's /bin) or a nologin account's is never listed,
// so Apply can never narrow it.
func TestHomesFromPasswd(t *testing.T) {
	me := os.Getuid()
	root := t.TempDir()
	for _, d := range []string{"/root", "/home/alice", "/srv/svc", "/srv/shared", "/srv/daemon"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(root, "/srv/shared"), me+1, -1); err != nil {
		t.Fatal(err)
	}
	ct.Write(t, root, passwd, "root:x:0:0:root:/root:/bin/bash\n"+
		"svc:x:"+strconv.Itoa(me)+":1::/srv/svc:/bin/bash\n"+ // owns its home, logs in: listed
		"sync:x:"+strconv.Itoa(me+2)+":65534:sync:/srv/shared:/bin/sync\n"+ // does not own it: never narrowed
		"daemon:x:"+strconv.Itoa(me)+":1::/srv/daemon:/usr/sbin/nologin\n"+ // cannot log in: not listed
		"gone:x:"+strconv.Itoa(me)+":1::/srv/missing:/bin/sh\n"+ // no such home: nothing to check
		"broken line\n")
	hs, err := homes(ct.NewHost(t, root))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, h.path)
	}
	if want := []string{"/root", "/home/alice", "/srv/svc"}; !slices.Equal(got, want) {
		t.Errorf("homes = %v, want %v", got, want)
	}
}
