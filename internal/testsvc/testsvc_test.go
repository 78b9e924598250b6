//go:build linux

package testsvc

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

func TestPostgresUnixSocketOnly(t *testing.T) {
	testutil.RequireRoot(t)
	pg := Postgres(t)
	dsn := pg.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var listen string
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "" {
		t.Errorf("listen_addresses = %q, want '' (Unix socket only)", listen)
	}
}

func TestClamdPingAndStop(t *testing.T) {
	testutil.RequireRoot(t)
	c := Clamd(t)
	if got := clamCmd(t, c.Socket, "zPING\x00"); got != "PONG" {
		t.Fatalf("PING = %q, want PONG", got)
	}
	c.Stop()
	if _, err := net.DialTimeout("unix", c.Socket, time.Second); err == nil {
		t.Fatal("clamd socket still answers after Stop")
	}
}

func clamCmd(t *testing.T, sock, cmd string) string {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(cmd))
	s, _ := bufio.NewReader(conn).ReadString(0)
	return strings.TrimRight(s, "\x00\n")
}
