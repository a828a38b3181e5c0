package api_test

import (
	"context"
	"strings"
	"testing"
	"unicode"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/wire"
)

// TestAgentInventoryIsPrintable: a node whose inventory carries terminal
// escape sequences, other control characters, a bidirectional override
// and invalid UTF-8 has them stored and served without those characters,
// and keeps the rest of each string.
func TestAgentInventoryIsPrintable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := controllertest.Start(t, "", nil)
	api := in.Client(t, in.AdminToken)
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, in, "edge-01")
	const esc = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
	inv := wire.Inventory{
		CPUs:       []wire.CPU{{Model: esc + "Xeon\u202e\x9b6n"}},
		Disks:      []wire.Disk{{Name: "sda\r", Model: "disk\xff", Serial: "S\x00N"}},
		Interfaces: []wire.Interface{{Name: "eth0", MAC: "52:54:00:12:34:56", State: "up\x7f", Addresses: []string{"10.0.0.2/24\n"}}},
		OS:         wire.OS{ID: "debian", PrettyName: "Debian" + esc},
		Kernel:     "6.1\x1b[0m",
	}
	var out struct{}
	a.post(wire.InventoryPath, wire.InventoryReport{Capability: wire.CapabilityVersion, Hash: "h\x1b1", Inventory: inv}, &out)
	hi, err := api.HostInventory(ctx, "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{hi.Hash, hi.Inventory.CPUs[0].Model, hi.Inventory.Disks[0].Name, hi.Inventory.Disks[0].Model,
		hi.Inventory.Disks[0].Serial, hi.Inventory.Interfaces[0].State, hi.Inventory.Interfaces[0].Addresses[0],
		hi.Inventory.OS.PrettyName, hi.Inventory.Kernel}
	want := []string{"h1", "]0;owned[2J[31mXeon6n", "sda", "disk", "SN", "up", "10.0.0.2/24", "Debian]0;owned[2J[31m", "6.1[0m"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("string %d: %q, want %q", i, got[i], want[i])
		}
		if strings.IndexFunc(got[i], func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
			t.Errorf("string %d keeps a control character: %q", i, got[i])
		}
	}
}
