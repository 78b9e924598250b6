//go:build linux

package database

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// asPostgres runs the rest of a command as the postgres user from /: run
// from root's home, which postgres cannot enter, psql and postgres warn on
// stderr, and that warning would be read as the answer.
var asPostgres = []string{"-C", "/", "runuser", "-u", "postgres", "--"}

// psql runs one query as the postgres superuser over the Unix socket (peer
// auth: the OS user is the role) and returns the unaligned, tuples-only
// result.
func psql(ctx context.Context, h host.Host, query string) (string, error) {
	out, err := h.Query(ctx, "env", append(asPostgres, "psql", "-XAtq", "-h", SocketDir, "-c", query)...)
	return strings.TrimSpace(string(out)), err
}

// liveSetting is the running server's value, which differs from the
// files' until the server restarts.
func liveSetting(ctx context.Context, h host.Host, _ Layout, name string) (string, string, error) {
	v, err := psql(ctx, h, "SHOW "+name)
	return v, "psql over " + Socket + ": SHOW " + name, err
}

// noTCP fails on any kernel listener on PostgreSQL's port: whatever the
// files say, a socket in LISTEN is what an attacker reaches.
func noTCP() provision.Finding {
	f := configMeta.Finding(fmt.Sprintf("TCP listeners on port %d", Port), "none")
	ls, sources, err := probe.Listeners()
	src := strings.Join(sources, " ")
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/proc/net", Read: err.Error()})
	}
	var bad []string
	for _, l := range ls {
		if l.Proto == "tcp" && l.Addr.Port() == Port {
			bad = append(bad, l.String())
		}
	}
	if len(bad) > 0 {
		return check.Fail(f, strings.Join(bad, " "), "PostgreSQL accepts TCP connections; listen_addresses must be ''",
			provision.Evidence{Source: src, Read: "LISTEN " + strings.Join(bad, " ")})
	}
	return check.Pass(f, "none", provision.Evidence{Source: src, Read: fmt.Sprintf("no socket in LISTEN on port %d", Port)})
}

// socketPresent checks the Unix socket transferd connects to.
func socketPresent(h host.Host) provision.Finding {
	f := configMeta.Finding("socket "+Socket, "a Unix socket")
	st, err := h.Lstat(Socket)
	if err != nil {
		return check.Fail(f, "missing", "the server is not accepting local connections", provision.Evidence{Source: Socket, Read: err.Error()})
	}
	if st.Mode().Type() != fs.ModeSocket {
		return check.Fail(f, st.Mode().String(), "not a socket", provision.Evidence{Source: Socket, Read: st.Mode().String()})
	}
	return check.Pass(f, "socket", provision.Evidence{Source: Socket, Read: st.Mode().String()})
}
