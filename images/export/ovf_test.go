package export

import (
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// ovfDoc is the part of a descriptor the tests read back: parsing it is
// what an importer does first, so a malformed or mis-escaped OVF fails here.
type ovfDoc struct {
	XMLName xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	File    struct {
		Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
		Size int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
	} `xml:"References>File"`
	Disk struct {
		Capacity  int64 `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
		Populated int64 `xml:"http://schemas.dmtf.org/ovf/envelope/1 populatedSize,attr"`
	} `xml:"DiskSection>Disk"`
	System struct {
		ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Name string `xml:"Name"`
		OS   struct {
			ID     int    `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
			VMware string `xml:"http://www.vmware.com/schema/ovf osType,attr"`
		} `xml:"OperatingSystemSection"`
		Items []struct {
			Type     int    `xml:"ResourceType"`
			SubType  string `xml:"ResourceSubType"`
			Quantity int    `xml:"VirtualQuantity"`
			Parent   int    `xml:"Parent"`
			Host     string `xml:"HostResource"`
		} `xml:"VirtualHardwareSection>Item"`
		Config []struct {
			Key   string `xml:"http://www.vmware.com/schema/ovf key,attr"`
			Value string `xml:"http://www.vmware.com/schema/ovf value,attr"`
		} `xml:"VirtualHardwareSection>Config"`
	} `xml:"VirtualSystem"`
}

// item returns the first hardware item of a CIM ResourceType.
func (d ovfDoc) item(t *testing.T, typ int) (subType string, quantity int) {
	t.Helper()
	for _, it := range d.System.Items {
		if it.Type == typ {
			return it.SubType, it.Quantity
		}
	}
	t.Fatalf("no hardware item of ResourceType %d", typ)
	return "", 0
}

func TestRenderOVF(t *testing.T) {
	disk := ovfDisk{File: "bulwark-debian-13.vmdk", FileSize: 987654321, Capacity: 4 << 30, Populated: 1234567890}
	tests := []struct {
		name, vm string
		m        Machine
		wantOS   OS
		wantSCSI string
	}{
		{"debian-defaults", "bulwark-debian-13", Machine{}, Debian13, LSILogic},
		{"ubuntu-pvscsi", "bulwark-ubuntu-24.04", Machine{CPUs: 4, MemoryMiB: 8192, SCSI: PVSCSI, OS: Ubuntu}, Ubuntu, PVSCSI},
		// A name is the caller's: whatever it holds must stay well-formed.
		{"escaped-name", `a&b<"c">`, Machine{OS: OS{101, "other5xLinux64Guest", "Linux & co"}}, OS{101, "other5xLinux64Guest", ""}, LSILogic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m.withDefaults()
			got, err := renderOVF(tt.vm, m, disk)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", tt.name+".ovf"), got)

			var d ovfDoc
			if err := xml.Unmarshal(got, &d); err != nil {
				t.Fatalf("descriptor does not parse: %v", err)
			}
			if d.File.Href != disk.File || d.File.Size != disk.FileSize || d.Disk.Capacity != disk.Capacity || d.Disk.Populated != disk.Populated {
				t.Errorf("disk: got %+v %+v, want %+v", d.File, d.Disk, disk)
			}
			if d.System.ID != tt.vm || d.System.Name != tt.vm {
				t.Errorf("VirtualSystem id %q name %q, want %q", d.System.ID, d.System.Name, tt.vm)
			}
			if d.System.OS.ID != tt.wantOS.ID || d.System.OS.VMware != tt.wantOS.VMwareType {
				t.Errorf("OS %+v, want %+v", d.System.OS, tt.wantOS)
			}
			if _, n := d.item(t, 3); n != m.CPUs {
				t.Errorf("CPUs %d, want %d", n, m.CPUs)
			}
			if _, n := d.item(t, 4); n != m.MemoryMiB {
				t.Errorf("memory %d MiB, want %d", n, m.MemoryMiB)
			}
			if sub, _ := d.item(t, 6); sub != tt.wantSCSI {
				t.Errorf("SCSI controller %q, want %q", sub, tt.wantSCSI)
			}
			if sub, _ := d.item(t, 10); sub != "VmxNet3" {
				t.Errorf("NIC %q, want VmxNet3", sub)
			}
			for _, it := range d.System.Items {
				if it.Type == 17 && (it.Parent != 3 || it.Host != "ovf:/disk/vmdisk1") {
					t.Errorf("disk item on parent %d with %q, want the SCSI controller (3) and ovf:/disk/vmdisk1", it.Parent, it.Host)
				}
			}
			if len(d.System.Config) != 1 || d.System.Config[0].Key != "firmware" || d.System.Config[0].Value != "efi" {
				t.Errorf("vmw:Config %+v, want firmware=efi", d.System.Config)
			}
		})
	}
}

func TestRenderOVFRejects(t *testing.T) {
	_, err := renderOVF("x", Machine{CPUs: 0, MemoryMiB: 2048, SCSI: LSILogic, OS: Debian12}, ovfDisk{})
	if err == nil || !strings.Contains(err.Error(), "cpus 0") {
		t.Errorf("got %v, want an error naming cpus", err)
	}
}
