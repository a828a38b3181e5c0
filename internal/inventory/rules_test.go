package inventory

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

func TestCheckHostname(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"edge-01", true},
		{"e", true},
		{"edge-01.line-3.example", true},
		{"0edge", true},
		{"10-20", true}, // digits and '-': not a host id
		{"1-2.3-4", true},
		{"10.20-x", true},
		{"1.-2", false},
		{long, true},
		{long + "a", false},
		{strings.Repeat(long+".", 3) + strings.Repeat("a", 61), true}, // 253
		{strings.Repeat(long+".", 3) + strings.Repeat("a", 62), false},
		{"", false},
		{"Edge-01", false},
		{"edge_01", false},
		{"-edge", false},
		{"edge-", false},
		{"edge..01", false},
		{".edge", false},
		{"edge 01", false},
		{"123", false},
		{"12.34", false},
		{"édge", false},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", false},
		{"deadbeefdeadbeefdeadbeefdeadbeef", false},
		{"deadbeef-edge", true},
	} {
		err := CheckHostname(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHostname(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && (!problem.Is(err, problem.Invalid) || problem.FieldOf(err) != "hostname") {
			t.Errorf("CheckHostname(%q) error %v is not an invalid hostname", tc.name, err)
		}
	}
}

func TestNormalizeMAC(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"52:54:00:AB:cd:01", "52:54:00:ab:cd:01"},
		{"52-54-00-ab-cd-01", "52:54:00:ab:cd:01"},
		{"5254.00ab.cd01", "52:54:00:ab:cd:01"},
		{"525400ABcd01", "52:54:00:ab:cd:01"},
		{"525400abcd", ""},
		{"525400abcd0102", ""}, // EUI-64
		{" 52:54:00:ab:cd:01 ", "52:54:00:ab:cd:01"},
		{"52:54:00:ab:cd", ""},
		{"01:00:5e:00:00:01", ""}, // multicast
		{"ff:ff:ff:ff:ff:ff", ""},
		{"00:00:00:00:00:00", ""},
		{"00:00:00:00:fe:80:00:00", ""}, // EUI-64
		{"zz:54:00:ab:cd:01", ""},
	} {
		got, err := NormalizeMAC("mgmt_mac", tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func mustPool(t *testing.T, mode, network string, ranges, reserved []string, gateway string) Pool {
	t.Helper()
	p, err := buildPool(store.Pool{Name: "p", Role: "edge", Mode: mode, Network: network, Gateway: gateway}, ranges, nil, nil, reserved)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolCheckAddress(t *testing.T) {
	t.Parallel()
	v4 := mustPool(t, "static", "192.168.204.0/24", nil, []string{"192.168.204.2"}, "192.168.204.1")
	v6 := mustPool(t, "static", "fd00:204::/64", nil, nil, "")
	for _, tc := range []struct {
		p       Pool
		in      string
		want    string
		wantErr bool
	}{
		{v4, "192.168.204.10", "192.168.204.10", false},
		{v4, "::ffff:192.168.204.10", "192.168.204.10", false},
		{v4, "", "", true},
		{v4, "192.168.205.10", "", true},
		{v4, "192.168.204.0", "", true},
		{v4, "192.168.204.255", "", true},
		{v4, "192.168.204.2", "", true}, // reserved
		{v4, "192.168.204.1", "", true}, // gateway
		{v4, "192.168.204", "", true},
		{v4, "fe80::1%eth0", "", true},
		{v6, "fd00:204::10", "fd00:204::10", false},
		{v6, "fd00:204::ffff:ffff:ffff:ffff", "fd00:204::ffff:ffff:ffff:ffff", false}, // IPv6 has no broadcast address
		{v6, "fd00:204::", "", true},
		{v6, "192.168.204.10", "", true},
	} {
		got, err := tc.p.CheckAddress(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s CheckAddress(%q) = %q, %v; want %q, err=%v", tc.p.Network, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestBuildPool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, network, gateway string
		ranges, reserved             []string
		field                        string // "" when valid
	}{
		{"site-a", "dynamic", "10.0.0.0/8", "", nil, nil, ""},
		{"site-a", "dynamic", "10.1.0.0/24", "10.1.0.1", []string{"10.1.0.100-10.1.0.199", "10.1.0.20-10.1.0.29"}, []string{"10.1.0.2"}, ""},
		{"Site-A", "dynamic", "10.0.0.0/8", "", nil, nil, "name"},
		{"site-a", "bogus", "10.0.0.0/8", "", nil, nil, "mode"},
		{"site-a", "static", "10.0.0.1/8", "", nil, nil, "network"},
		{"site-a", "static", "10.0.0.0", "", nil, nil, "network"},
		{"site-a", "static", "10.0.0.0/31", "", nil, nil, "network"},
		{"site-a", "static", "10.1.0.0/24", "10.2.0.1", nil, nil, "gateway"},
		{"site-a", "static", "10.1.0.0/24", "", nil, []string{"x"}, "reserved"},
		{"site-a", "static", "10.1.0.0/24", "", nil, []string{"10.2.0.5"}, "reserved"},
		{"site-a", "dynamic", "10.1.0.0/24", "", []string{"10.1.0.9-10.1.0.5"}, nil, "ranges"},
		{"site-a", "dynamic", "10.1.0.0/24", "", []string{"10.1.0.5"}, nil, "ranges"},
		{"site-a", "dynamic", "10.1.0.0/24", "", []string{"10.1.0.5-10.2.0.5"}, nil, "ranges"},
		{"site-a", "dynamic", "10.1.0.0/24", "", []string{"10.1.0.5-10.1.0.50", "10.1.0.40-10.1.0.60"}, nil, "ranges"},
	} {
		_, err := buildPool(store.Pool{Name: tc.name, Role: "edge", Mode: tc.mode, Network: tc.network, Gateway: tc.gateway}, tc.ranges, nil, nil, tc.reserved)
		if got := problem.FieldOf(err); (err == nil) != (tc.field == "") || got != tc.field {
			t.Errorf("buildPool(%s %s %s %v %v): %v (field %q), want field %q", tc.name, tc.mode, tc.network, tc.ranges, tc.reserved, err, got, tc.field)
		}
	}
}

func TestAllocate(t *testing.T) {
	t.Parallel()
	addrs := func(ss ...string) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, s := range ss {
			m[netip.MustParseAddr(s)] = true
		}
		return m
	}
	whole := mustPool(t, "dynamic", "10.1.0.0/29", nil, []string{"10.1.0.2"}, "10.1.0.1")
	ranged := mustPool(t, "dynamic", "10.1.0.0/24", []string{"10.1.0.100-10.1.0.101", "10.1.0.200-10.1.0.200"}, nil, "")
	huge := mustPool(t, "dynamic", "10.0.0.0/8", nil, nil, "")
	v6 := mustPool(t, "dynamic", "fd00::/64", nil, nil, "")
	for _, tc := range []struct {
		p    Pool
		used map[netip.Addr]bool
		want string // "" when full
	}{
		{whole, nil, "10.1.0.3"},
		{whole, addrs("10.1.0.3", "10.1.0.5"), "10.1.0.4"},
		{whole, addrs("10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"), ""}, // .7 is broadcast
		{ranged, nil, "10.1.0.100"},
		{ranged, addrs("10.1.0.100", "10.1.0.101"), "10.1.0.200"},
		{ranged, addrs("10.1.0.100", "10.1.0.101", "10.1.0.200"), ""},
		{huge, addrs("10.0.0.1"), "10.0.0.2"},
		{v6, nil, "fd00::1"},
	} {
		var asked int
		held := func(cands []netip.Addr) (map[netip.Addr]bool, error) {
			asked += len(cands)
			return tc.used, nil
		}
		got, ok, err := tc.p.Allocate(netip.Addr{}, held)
		if err != nil || (tc.want == "" && ok) || (tc.want != "" && got.String() != tc.want) {
			t.Errorf("%s Allocate(%v) = %v, %v, %v; want %q", tc.p.Network, tc.used, got, ok, err, tc.want)
		}
		if asked > 16 {
			t.Errorf("%s Allocate(%v) asked about %d addresses, want at most a first batch of 16", tc.p.Network, tc.used, asked)
		}
	}
}

// TestAllocateFrom starts allocations at a point, as a pool's stored start
// makes them, and across long runs of held addresses, which are asked
// about in growing batches.
func TestAllocateFrom(t *testing.T) {
	t.Parallel()
	ranged := mustPool(t, "dynamic", "10.1.0.0/16", []string{"10.1.0.100-10.1.0.101", "10.1.1.0-10.1.3.255"}, nil, "")
	// Held: every address from 10.1.1.0 up to (not including) 10.1.2.200.
	heldBelow := netip.MustParseAddr("10.1.2.200")
	var asked, batches int
	held := func(cands []netip.Addr) (map[netip.Addr]bool, error) {
		asked += len(cands)
		batches++
		m := map[netip.Addr]bool{}
		for _, c := range cands {
			if c.Less(heldBelow) {
				m[c] = true
			}
		}
		return m, nil
	}
	for _, tc := range []struct {
		from        string
		want        string
		maxBatches  int
		wantNothing bool
	}{
		{from: "", want: "10.1.2.200", maxBatches: 6},
		{from: "10.1.0.101", want: "10.1.2.200", maxBatches: 6},
		{from: "10.1.2.199", want: "10.1.2.200", maxBatches: 1},
		{from: "10.1.2.250", want: "10.1.2.250", maxBatches: 1},
		{from: "10.1.0.150", want: "10.1.2.200", maxBatches: 6}, // between the ranges
		{from: "10.1.4.0", wantNothing: true, maxBatches: 0},
	} {
		asked, batches = 0, 0
		var from netip.Addr
		if tc.from != "" {
			from = netip.MustParseAddr(tc.from)
		}
		got, ok, err := ranged.Allocate(from, held)
		if err != nil || ok == tc.wantNothing || (ok && got.String() != tc.want) {
			t.Errorf("Allocate(from %q) = %v, %v, %v; want %q (nothing: %t)", tc.from, got, ok, err, tc.want, tc.wantNothing)
		}
		if batches > tc.maxBatches {
			t.Errorf("Allocate(from %q) asked %d times about %d addresses, want at most %d times", tc.from, batches, asked, tc.maxBatches)
		}
	}
	failed := errors.New("the database cannot be reached")
	if _, _, err := ranged.Allocate(netip.Addr{}, func([]netip.Addr) (map[netip.Addr]bool, error) { return nil, failed }); !errors.Is(err, failed) {
		t.Errorf("Allocate with a failing lookup: %v, want %v", err, failed)
	}
}

func TestCheckLabelsAndGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		labels map[string]string
		ok     bool
	}{
		{map[string]string{"zone": "north", "example.com/tier": "", "a_b.c-d": "X_y.z-1"}, true},
		{map[string]string{"": "x"}, false},
		{map[string]string{"-zone": "x"}, false},
		{map[string]string{"zone": "has space"}, false},
		{map[string]string{"zone": strings.Repeat("v", 64)}, false},
		{map[string]string{"hummingbird.io/group": "x"}, false},
		{map[string]string{"hummingbird.io/line": "3"}, false},
		{map[string]string{"hummingbird.io": "x", "hummingbird.io.example/line": "3", "example.com/hummingbird.io": "y"}, true},
		// Kubernetes' own namespaces, and their subdomains, are refused: the mark of the Nodes
		// Hummingbird owns among them.
		{map[string]string{"kubernetes.io/os": "linux"}, false},
		{map[string]string{"node-role.kubernetes.io/control-plane": ""}, false},
		{map[string]string{"node-restriction.kubernetes.io/hummingbird-host": "00000000-0000-4000-8000-000000000001"}, false},
		{map[string]string{"topology.kubernetes.io/zone": "north"}, false},
		{map[string]string{"k8s.io/x": "y"}, false},
		{map[string]string{"node.k8s.io/x": "y"}, false},
		{map[string]string{"Node-Role.Kubernetes.IO/x": "y"}, false},
		{map[string]string{"kubernetes.io.example.com/x": "y", "notkubernetes.io/x": "y", "example.com/kubernetes.io": "z",
			"kubernetes.io": "bare-name"}, true},
	} {
		if err := CheckLabels(tc.labels); (err == nil) != tc.ok {
			t.Errorf("CheckLabels(%v) = %v, want ok=%v", tc.labels, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		g  string
		ok bool
	}{{"", true}, {"line-3", true}, {"Line-3", false}, {"a.b", false}, {strings.Repeat("g", 64), false}} {
		if err := CheckGroup(tc.g); (err == nil) != tc.ok {
			t.Errorf("CheckGroup(%q) = %v, want ok=%v", tc.g, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"", true}, {"line 3, hall B — west", true}, {strings.Repeat("x", 255), true}, {strings.Repeat("é", 127), true},
		{strings.Repeat("x", 256), false}, {strings.Repeat("é", 128), false}, // bytes, not characters
		{"line\n3", false}, {"tab\there", false}, {"nul\x00", false}, {"del\x7f", false}, {"c1\u0085", false},
	} {
		err := CheckText("location", tc.s, 255)
		if (err == nil) != tc.ok || (err != nil && problem.FieldOf(err) != "location") {
			t.Errorf("CheckText(%q) = %v, want ok=%v", tc.s, err, tc.ok)
		}
	}
}

// TestCheckVIPIPv6: an IPv6 VIP may be the last address of its prefix
// (IPv6 has no broadcast address), not its first (the subnet-router
// anycast address).
func TestCheckVIPIPv6(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vip string
		ok  bool
	}{
		{"fd00:20::50/64", true}, {"fd00:20::ffff:ffff:ffff:ffff/64", true}, {"fd00:20::/64", false},
		{"10.20.0.255/24", false}, {"10.20.0.254/24", true},
	} {
		if _, err := CheckVIP(tc.vip); (err == nil) != tc.ok {
			t.Errorf("CheckVIP(%q) = %v, want ok=%v", tc.vip, err, tc.ok)
		}
	}
}

// TestEnums: every value the API documents for an enumerated host field
// (api/openapi.yaml, written out here) is accepted, and nothing else.
func TestEnums(t *testing.T) {
	t.Parallel()
	for field, values := range map[string][]string{
		"personality":    {"controller", "worker", "storage", "edgeworker"},
		"administrative": {"locked", "unlocked"},
		"operational":    {"disabled", "enabled"},
		"availability":   {"offline", "online", "available", "degraded", "failed"},
		"invprovision":   {"unprovisioned", "provisioning", "provisioned", "failed"},
	} {
		for _, v := range values {
			if err := CheckEnum(field, v); err != nil {
				t.Errorf("CheckEnum(%s, %q) = %v", field, v, err)
			}
		}
		for _, v := range []string{"", "bogus", strings.ToUpper(values[0]), values[0] + " "} {
			if err := CheckEnum(field, v); !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != field {
				t.Errorf("CheckEnum(%s, %q) = %v, want invalid %s", field, v, err, field)
			}
		}
	}
	for _, tc := range []struct {
		bmType string
		edge   bool
		ok     bool
	}{
		{"", false, true}, {"ipmi", false, true}, {"redfish", false, true}, {"dynamic", false, true},
		{"idrac", false, false}, {"IPMI", false, false}, {"ipmi", true, false}, {"", true, true},
	} {
		err := checkBMC(&store.Host{BMType: tc.bmType}, tc.edge)
		if (err == nil) != tc.ok || (err != nil && problem.FieldOf(err) != "bm_type") {
			t.Errorf("checkBMC(bm_type %q, edgeworker %v) = %v, want ok=%v", tc.bmType, tc.edge, err, tc.ok)
		}
	}
}
