//go:build linux

package database

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
)

// TestInitSQLConverges runs the init unit's SQL against a real PostgreSQL
// (the build machine's) on a Unix socket: it creates the role and database, changes nothing
// the second time, and puts back each drift the live Verify reports.
func TestInitSQLConverges(t *testing.T) {
	pg := testsvc.Postgres(t)
	sql := filepath.Join(t.TempDir(), "init.sql")
	if err := os.WriteFile(sql, []byte(initSQL), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-XAtq", "-h", pg.Dir, "-U", "bulwark", "-d", "postgres", "-v", "ON_ERROR_STOP=1"}, args...)
		out, err := exec.Command(filepath.Join(pg.Bin, "psql"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("-c", roleQuery); got != "no role no database" {
		t.Fatalf("fresh server: %q", got)
	}
	tests := []struct{ name, breakSQL, broken string }{
		{"first run creates both", "SELECT 1", "no role no database"},
		{"second run changes nothing", "SELECT 1", roleWant},
		{"role made superuser", "ALTER ROLE transferd SUPERUSER", "true,super=true owner=transferd"},
		{"role cannot log in", "ALTER ROLE transferd NOLOGIN", "false,super=false owner=transferd"},
		{"database handed to postgres' superuser", "ALTER DATABASE transfer OWNER TO bulwark", "true,super=false owner=bulwark"},
		{"role and database dropped", "DROP DATABASE transfer; DROP ROLE transferd", "no role no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.breakSQL != "SELECT 1" {
				for _, stmt := range strings.Split(tt.breakSQL, "; ") {
					run("-c", stmt)
				}
			}
			if got := run("-c", roleQuery); got != tt.broken {
				t.Fatalf("before the init SQL: %q; want %q", got, tt.broken)
			}
			run("-f", sql)
			if got := run("-c", roleQuery); got != roleWant {
				t.Fatalf("after the init SQL: %q; want %q", got, roleWant)
			}
		})
	}
}
