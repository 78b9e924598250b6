package export

import (
	"slices"
	"strings"
	"testing"
)

// TestConvertArgs pins each qemu-img command line: the subformats and
// options are what each platform's importer insists on.
func TestConvertArgs(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{"raw", "convert -f qcow2 -O raw in.qcow2 out"},
		{"qcow2", "convert -f qcow2 -O qcow2 in.qcow2 out"},
		{"vmdk", "convert -f qcow2 -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic in.qcow2 out"},
		{"vhd", "convert -n --target-is-zero -f qcow2 -O vpc in.qcow2 out"},
	}
	var seen []string
	for _, d := range disks {
		seen = append(seen, d.format)
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			i := slices.IndexFunc(disks, func(d disk) bool { return d.format == tt.format })
			if i < 0 {
				t.Fatalf("no %s in disks (have %v)", tt.format, seen)
			}
			if got := strings.Join(disks[i].args("qcow2", "in.qcow2", "out"), " "); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if len(disks[i].platforms) == 0 {
				t.Errorf("%s names no platform", tt.format)
			}
		})
	}
	if len(tests) != len(disks) {
		t.Errorf("disks has %v; every format needs a row here", seen)
	}
}

func TestVHDCreate(t *testing.T) {
	tests := []struct {
		size int64
		want string
	}{
		{64 * MiB, "67108864"},
		{64*MiB + 512, "68157440"},
		{1, "1048576"},
		{4 << 30, "4294967296"},
	}
	for _, tt := range tests {
		args := vhdCreateArgs("d.vhd", tt.size)
		want := "create -q -f vpc -o subformat=fixed,force_size=on d.vhd " + tt.want
		if got := strings.Join(args, " "); got != want {
			t.Errorf("size %d:\n got  %s\n want %s", tt.size, got, want)
		}
	}
}

func TestSumData(t *testing.T) {
	tests := []struct {
		name, json string
		want       int64
		wantErr    bool
	}{
		{"raw with holes", `[{"start":0,"length":20480,"zero":false,"data":true},
			{"start":20480,"length":67072000,"zero":true,"data":false},
			{"start":67092480,"length":16896,"zero":false,"data":true}]`, 20480 + 16896, false},
		{"qcow2 zero clusters", `[{"length":65536,"zero":true,"data":true},{"length":4096,"zero":false,"data":true}]`, 4096, false},
		{"empty", `[]`, 0, false},
		{"not json", `qemu-img: oops`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sumData([]byte(tt.json))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseOS(t *testing.T) {
	tests := []struct {
		in      string
		want    OS
		wantErr string
	}{
		{"debian12", Debian12, ""},
		{"debian13", Debian13, ""},
		{"ubuntu", Ubuntu, ""},
		{"101:other5xLinux64Guest:Linux 6.x (64-bit)", OS{101, "other5xLinux64Guest", "Linux 6.x (64-bit)"}, ""},
		{"96:debian11_64Guest", OS{96, "debian11_64Guest", "debian11_64Guest"}, ""},
		{"windows", OS{}, "want one of debian12"},
		{"x:debian12_64Guest", OS{}, "not a CIM OsType number"},
		{"96:", OS{}, "needs a CIM OsType number and a VMware osType"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOS(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMachineValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Machine
		want []string // every one must be in the error; none means valid
	}{
		{"defaults", Machine{}.withDefaults(), nil},
		{"pvscsi", Machine{SCSI: PVSCSI}.withDefaults(), nil},
		{"all wrong at once", Machine{CPUs: -1, MemoryMiB: 64, SCSI: "nvme", OS: OS{VMwareType: "x"}},
			[]string{"cpus -1", "memory 64 MiB", `scsi "nvme"`, "CIM OsType"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q: %v", w, err)
				}
			}
		})
	}
}

func TestRoundMiB(t *testing.T) {
	for _, tt := range []struct{ in, want int64 }{{0, 0}, {1, MiB}, {MiB, MiB}, {MiB + 1, 2 * MiB}, {4 << 30, 4 << 30}} {
		if got := roundMiB(tt.in); got != tt.want {
			t.Errorf("roundMiB(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
