package export

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

// OS is the guest named in the OVF's OperatingSystemSection. ESXi picks
// its virtual hardware defaults from VMwareType; VirtualBox maps ID (the
// DMTF CIM_OperatingSystem OsType) to one of its own OS types.
type OS struct {
	ID          int    // CIM OsType: 96 is "Debian 64-Bit", 94 "Ubuntu 64-Bit"
	VMwareType  string // vmw:osType, e.g. debian12_64Guest
	Description string
}

// The presets --os-type names. debian13 keeps VMware's debian12 type:
// ESXi releases older than Debian 13 refuse an osType they do not know,
// and the 12 type gives the same virtual hardware.
var (
	Debian12 = OS{ID: 96, VMwareType: "debian12_64Guest", Description: "Debian GNU/Linux 12 (64-bit)"}
	Debian13 = OS{ID: 96, VMwareType: "debian12_64Guest", Description: "Debian GNU/Linux 13 (64-bit)"}
	Ubuntu   = OS{ID: 94, VMwareType: "ubuntu64Guest", Description: "Ubuntu Linux (64-bit)"}
)

var osPresets = map[string]OS{"debian12": Debian12, "debian13": Debian13, "ubuntu": Ubuntu}

// ParseOS reads --os-type: a preset name (debian12, debian13, ubuntu), or
// ID:VMWARETYPE[:DESCRIPTION] for any other guest, e.g.
// "101:other5xLinux64Guest:Linux 6.x (64-bit)".
func ParseOS(s string) (OS, error) {
	if o, ok := osPresets[s]; ok {
		return o, nil
	}
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return OS{}, fmt.Errorf("os type %q: want one of debian12, debian13, ubuntu, or ID:VMWARETYPE[:DESCRIPTION]", s)
	}
	id, err := strconv.Atoi(parts[0])
	if err != nil || id <= 0 {
		return OS{}, fmt.Errorf("os type %q: %q is not a CIM OsType number (96 is Debian 64-bit)", s, parts[0])
	}
	o := OS{ID: id, VMwareType: parts[1], Description: parts[1]}
	if len(parts) == 3 {
		o.Description = parts[2]
	}
	return o, o.validate()
}

func (o OS) validate() error {
	if o.ID <= 0 || o.VMwareType == "" {
		return fmt.Errorf("os type: needs a CIM OsType number and a VMware osType, got %d and %q", o.ID, o.VMwareType)
	}
	return nil
}

// SCSI controllers the OVF can name. LSILogic is the default because
// VirtualBox has no paravirtual SCSI; on ESXi, PVSCSI is the faster
// choice. Debian's and Ubuntu's initramfs carry drivers for both.
const (
	LSILogic = "lsilogic"
	PVSCSI   = "VirtualSCSI"
)

// Machine is the virtual hardware the OVF describes.
type Machine struct {
	CPUs      int    // default 2
	MemoryMiB int    // default 2048
	SCSI      string // LSILogic (default) or PVSCSI
	OS        OS     // default Debian13
}

func (m Machine) withDefaults() Machine {
	if m.CPUs == 0 {
		m.CPUs = 2
	}
	if m.MemoryMiB == 0 {
		m.MemoryMiB = 2048
	}
	if m.SCSI == "" {
		m.SCSI = LSILogic
	}
	if m.OS == (OS{}) {
		m.OS = Debian13
	}
	return m
}

// validate reports every problem at once, so a caller fixes them in one go.
func (m Machine) validate() error {
	var errs []error
	if m.CPUs < 1 {
		errs = append(errs, fmt.Errorf("cpus %d: need at least 1", m.CPUs))
	}
	if m.MemoryMiB < 256 {
		errs = append(errs, fmt.Errorf("memory %d MiB: need at least 256", m.MemoryMiB))
	}
	if m.SCSI != LSILogic && m.SCSI != PVSCSI {
		errs = append(errs, fmt.Errorf("scsi %q: must be %s or %s", m.SCSI, LSILogic, PVSCSI))
	}
	if err := m.OS.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ovfDisk is what the descriptor says about the one disk.
type ovfDisk struct {
	File      string // the .vmdk's name inside the OVA
	FileSize  int64  // its size in bytes (References/File ovf:size)
	Capacity  int64  // virtual size in bytes
	Populated int64  // bytes holding data
}

// hardwareVersion is vmx-14 (ESXi 6.7): every ESXi still supported runs
// it, VirtualBox accepts any vmx-N, and UEFI with Secure Boot needs no more.
const hardwareVersion = "vmx-14"

// The descriptor is OVF 1.0 as ESXi, ovftool and VirtualBox write it. It is
// a template, not encoding/xml structs: OVF puts prefixed attributes from
// four namespaces on one element, which encoding/xml cannot emit with
// stable prefixes. Every string goes through xmlText; the test parses the
// result and compares it with a golden file.
var ovfTemplate = template.Must(template.New("ovf").Funcs(template.FuncMap{"x": xmlText}).Parse(
	`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{{x .Disk.File}}" ovf:id="file1" ovf:size="{{.Disk.FileSize}}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{{.Disk.Capacity}}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="{{.Disk.Populated}}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The logical networks the appliance connects to</Info>
    <Network ovf:name="VM Network">
      <Description>The network the appliance serves on</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{{x .Name}}">
    <Info>A bulwark file-transfer appliance</Info>
    <Name>{{x .Name}}</Name>
    <OperatingSystemSection ovf:id="{{.M.OS.ID}}" vmw:osType="{{x .M.OS.VMwareType}}">
      <Info>The guest operating system</Info>
      <Description>{{x .M.OS.Description}}</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{{x .Name}}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>{{.HW}}</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>{{.M.CPUs}} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.M.CPUs}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory size</rasd:Description>
        <rasd:ElementName>{{.M.MemoryMiB}}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.M.MemoryMiB}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>{{x .M.SCSI}}</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`))

// renderOVF writes the descriptor for one VM named name with disk d.
func renderOVF(name string, m Machine, d ovfDisk) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("ovf: %w", err)
	}
	var b bytes.Buffer
	err := ovfTemplate.Execute(&b, struct {
		Name, HW string
		M        Machine
		Disk     ovfDisk
	}{name, hardwareVersion, m, d})
	if err != nil {
		return nil, fmt.Errorf("ovf: render: %w", err)
	}
	return b.Bytes(), nil
}

// xmlText escapes s for an XML attribute or text node.
func xmlText(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}
