package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

// skipDisk tells the block devices that are not disks: loop devices, RAM
// disks, compressed swap in RAM, device-mapper and software RAID volumes
// (their disks are reported, held), optical drives, floppies and eMMC boot
// areas.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	// eMMC boot areas (mmcblk0boot0) are not disks of their own.
	return strings.HasPrefix(name, "mmcblk") && strings.Contains(name, "boot")
}

// virtualDisk tells a disk a hypervisor provides, by its name (virtio vd*,
// Xen xvd*) or by the vendor and model its emulated controller reports.
func virtualDisk(name, vendor, model string) bool {
	if strings.HasPrefix(name, "vd") || strings.HasPrefix(name, "xvd") {
		return true
	}
	switch strings.TrimSuffix(vendor, ",") {
	case "QEMU", "VMware", "Msft", "VBOX", "Xen", "XENSRC":
		return true
	}
	for _, m := range []string{"QEMU", "VBOX", "Virtual disk", "Virtual Disk", "VMware"} {
		if strings.Contains(model, m) {
			return true
		}
	}
	return false
}

// devicesInUse returns the names of the block devices that hold a mounted
// file system or active swap (proc/swaps). The mounts are those of the
// host's init (proc/1/mounts) when it can be read, which an agent in a
// container sees through the host's /proc, else the agent's own
// (proc/self/mounts).
func (s Sources) devicesInUse() (map[string]bool, error) {
	used := make(map[string]bool)
	add := func(source string) {
		if dev, ok := strings.CutPrefix(source, "/dev/"); ok && !strings.Contains(dev, "/") {
			used[dev] = true
		}
	}
	b, err := os.ReadFile(filepath.Join(s.Proc, "1/mounts"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join(s.Proc, "self/mounts"))
	}
	if err != nil {
		return used, err
	}
	lines(b, func(line string) {
		if f := strings.Fields(line); len(f) > 0 {
			add(f[0])
		}
	})
	if b, err := os.ReadFile(filepath.Join(s.Proc, "swaps")); err == nil {
		lines(b, func(line string) {
			if f := strings.Fields(line); len(f) > 0 {
				add(f[0])
			}
		})
	}
	return used, nil
}

// hasEntries tells whether a directory has anything in it; an absent one
// has not.
func hasEntries(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}

// diskSerial finds the serial number of a disk: the device's own
// attribute (NVMe, some SCSI, virtio-blk), the unit serial number VPD
// page, or else the world-wide identifier.
func diskSerial(dir string) string {
	for _, f := range []string{"device/serial", "serial"} {
		if s := readOptional(filepath.Join(dir, f)); s != "" {
			return s
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "device/vpd_pg80")); err == nil && len(b) > 4 && b[1] == 0x80 {
		n := int(b[2])<<8 | int(b[3])
		if 4+n <= len(b) {
			if s := strings.TrimSpace(strings.Trim(string(b[4:4+n]), "\x00")); s != "" {
				return s
			}
		}
	}
	for _, f := range []string{"wwid", "device/wwid"} {
		if s := readOptional(filepath.Join(dir, f)); s != "" {
			return s
		}
	}
	return ""
}

func (s Sources) collectDisks(_ context.Context, inv *wire.Inventory) error {
	blockDir := filepath.Join(s.Sys, "block")
	entries, err := os.ReadDir(blockDir)
	if err != nil {
		return err
	}
	var errs []error
	used, err := s.devicesInUse()
	if err != nil {
		errs = append(errs, err)
	}
	disks := []wire.Disk{}
	for _, e := range entries {
		name := e.Name()
		if skipDisk(name) {
			continue
		}
		dir := filepath.Join(blockDir, name)
		sectors, err := readUint(filepath.Join(dir, "size"))
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %s: %w", name, err))
			continue
		}
		if sectors == 0 {
			continue // no medium: an empty card reader, an unbound nbd
		}
		d := wire.Disk{
			Name:      name,
			SizeBytes: sectors * 512, // sysfs counts 512-byte sectors whatever the block size
			Model:     readOptional(filepath.Join(dir, "device/model")),
			Serial:    diskSerial(dir),
		}
		d.Rotational = readOptional(filepath.Join(dir, "queue/rotational")) == "1"
		vendor := readOptional(filepath.Join(dir, "device/vendor"))
		switch {
		case virtualDisk(name, vendor, d.Model):
			d.Type = "virtual"
		case strings.HasPrefix(name, "nvme"):
			d.Type = "nvme"
		case d.Rotational:
			d.Type = "hdd"
		default:
			d.Type = "ssd"
		}
		d.InUse = used[name] || hasEntries(filepath.Join(dir, "holders"))
		parts, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %s: %w", name, err))
		}
		for _, p := range parts {
			if !strings.HasPrefix(p.Name(), name) {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, p.Name(), "partition")); err == nil {
				d.InUse = true // partitioned, whatever the partitions hold
			}
		}
		disks = append(disks, d)
	}
	slices.SortFunc(disks, func(a, b wire.Disk) int { return strings.Compare(a.Name, b.Name) })
	inv.Disks = disks
	return errors.Join(errs...)
}
