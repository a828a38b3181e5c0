package collect

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

func sampleInventory() wire.Inventory {
	return wire.Inventory{
		CollectedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		CPUs: []wire.CPU{
			{Socket: 0, Model: "Xeon", Cores: 8, Threads: 16, MHz: 2400},
			{Socket: 1, Model: "Xeon", Cores: 8, Threads: 16, MHz: 2400},
		},
		Memory: wire.Memory{TotalBytes: 64 << 30, AvailableBytes: 60 << 30},
		Disks: []wire.Disk{
			{Name: "sda", SizeBytes: 480 << 30, Type: "ssd", InUse: true},
			{Name: "sdb", SizeBytes: 4 << 40, Type: "hdd", Rotational: true},
		},
		Interfaces: []wire.Interface{
			{Name: "eno1", MAC: "b4:96:91:0a:0b:0c", State: "up", MTU: 1500, Addresses: []string{"10.0.0.5/24", "fe80::1/64"}},
			{Name: "lo", State: "unknown", MTU: 65536, Virtual: true, Addresses: []string{}},
		},
		OS:     wire.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Kernel: "6.1.0-28-amd64",
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	base := Hash(sampleInventory())
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("Hash = %q, want sha256:HEX", base)
	}
	tests := []struct {
		name   string
		change func(*wire.Inventory)
		same   bool
	}{
		{"nothing", func(*wire.Inventory) {}, true},
		{"collected later", func(inv *wire.Inventory) { inv.CollectedAt = inv.CollectedAt.Add(time.Hour) }, true},
		{"available memory", func(inv *wire.Inventory) { inv.Memory.AvailableBytes /= 2 }, true},
		{"CPU clock", func(inv *wire.Inventory) { inv.CPUs[0].MHz = 3100 }, true},
		{"disk order", func(inv *wire.Inventory) { slices.Reverse(inv.Disks) }, true},
		{"interface order", func(inv *wire.Inventory) { slices.Reverse(inv.Interfaces) }, true},
		{"address order", func(inv *wire.Inventory) { slices.Reverse(inv.Interfaces[0].Addresses) }, true},
		{"CPU order", func(inv *wire.Inventory) { slices.Reverse(inv.CPUs) }, true},
		{"nil addresses", func(inv *wire.Inventory) { inv.Interfaces[1].Addresses = nil }, true},
		{"total memory", func(inv *wire.Inventory) { inv.Memory.TotalBytes += 1 << 30 }, false},
		{"disk in use", func(inv *wire.Inventory) { inv.Disks[1].InUse = true }, false},
		{"disk added", func(inv *wire.Inventory) { inv.Disks = append(inv.Disks, wire.Disk{Name: "sdc"}) }, false},
		{"address", func(inv *wire.Inventory) { inv.Interfaces[0].Addresses[0] = "10.0.0.6/24" }, false},
		{"link down", func(inv *wire.Inventory) { inv.Interfaces[0].State = "down" }, false},
		{"kernel", func(inv *wire.Inventory) { inv.Kernel = "6.1.0-29-amd64" }, false},
		{"kubelet", func(inv *wire.Inventory) { inv.Kubelet = "v1.31.2" }, false},
		{"cores", func(inv *wire.Inventory) { inv.CPUs[1].Cores = 4 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv := sampleInventory()
			tt.change(&inv)
			if got := Hash(inv); (got == base) != tt.same {
				t.Errorf("Hash after %s: same = %v, want %v", tt.name, got == base, tt.same)
			}
		})
	}
}

// Hash must not reorder or change the caller's slices.
func TestHashLeavesInventoryAlone(t *testing.T) {
	t.Parallel()
	inv := sampleInventory()
	slices.Reverse(inv.Disks)
	slices.Reverse(inv.Interfaces[0].Addresses)
	slices.Reverse(inv.Interfaces)
	Hash(inv)
	if inv.Disks[0].Name != "sdb" || inv.Interfaces[0].Name != "lo" || inv.Interfaces[1].Addresses[0] != "fe80::1/64" {
		t.Errorf("Hash changed its argument: %+v", inv)
	}
	if inv.CPUs[0].MHz != 2400 {
		t.Errorf("Hash changed MHz to %d", inv.CPUs[0].MHz)
	}
}
