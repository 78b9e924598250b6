package local

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	m := Machine{Name: "bulwark-dev", Image: "/v/boot.qcow2", DataDisk: "/v/data.raw", Seed: "/v/seed.iso",
		StateDir: "/run/bulwark/dev", Forwards: map[uint16]uint16{8443: 18443, 443: 10443}}
	tests := []struct {
		name   string
		mutate func(*Machine)
		want   []string // substrings of the joined command line, in order
		err    string
	}{
		{"tcg defaults", func(*Machine) {}, []string{"-accel tcg", "-m 2048", "-smp 2",
			"file=/v/boot.qcow2,if=virtio,format=qcow2", "file=/v/data.raw,if=virtio,format=raw",
			"media=cdrom,readonly=on", "hostfwd=tcp:127.0.0.1:10443-:443,hostfwd=tcp:127.0.0.1:18443-:8443",
			"-pidfile /run/bulwark/dev/qemu.pid"}, ""},
		{"kvm", func(m *Machine) { m.KVM, m.MemoryMiB = true, 4096 }, []string{"-accel kvm", "-m 4096"}, ""},
		{"no image", func(m *Machine) { m.Image = "" }, nil, "Image is empty"},
		{"comma in path", func(m *Machine) { m.DataDisk = "/v/a,b.raw" }, nil, "must not contain ','"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := m
			tt.mutate(&mm)
			args, err := Args(mm)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(args, " ")
			rest := line
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing (or out of order) in:\n%s", w, line)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
