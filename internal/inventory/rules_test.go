package inventory

import (
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/problem"
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

func TestCheckMgmtIP(t *testing.T) {
	t.Parallel()
	static, err := ParseNetwork("static", "192.168.204.0/24", []string{"192.168.204.2"})
	if err != nil {
		t.Fatal(err)
	}
	dynamic, err := ParseNetwork("dynamic", "192.168.204.0/24", nil)
	if err != nil {
		t.Fatal(err)
	}
	v6, err := ParseNetwork("static", "fd00:204::/64", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net     Network
		in      string
		want    string
		wantErr bool
	}{
		{static, "192.168.204.10", "192.168.204.10", false},
		{static, "::ffff:192.168.204.10", "192.168.204.10", false},
		{static, "", "", true},
		{static, "192.168.205.10", "", true},
		{static, "192.168.204.0", "", true},
		{static, "192.168.204.255", "", true},
		{static, "192.168.204.2", "", true},
		{static, "192.168.204", "", true},
		{static, "fe80::1%eth0", "", true},
		{dynamic, "", "", false},
		{dynamic, "192.168.204.10", "", true},
		{v6, "fd00:204::10", "fd00:204::10", false},
		{v6, "fd00:204::", "", true},
		{v6, "192.168.204.10", "", true},
	} {
		got, err := tc.net.CheckMgmtIP(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s CheckMgmtIP(%q) = %q, %v; want %q, err=%v", tc.net.Mode, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode, subnet string
		reserved     []string
		ok           bool
	}{
		{"static", "10.0.0.0/8", nil, true},
		{"bogus", "10.0.0.0/8", nil, false},
		{"static", "10.0.0.1/8", nil, false},
		{"static", "10.0.0.0", nil, false},
		{"static", "10.0.0.0/8", []string{"11.0.0.1"}, false},
		{"static", "10.0.0.0/8", []string{"x"}, false},
	} {
		_, err := ParseNetwork(tc.mode, tc.subnet, tc.reserved)
		if (err == nil) != tc.ok {
			t.Errorf("ParseNetwork(%q, %q, %v) = %v, want ok=%v", tc.mode, tc.subnet, tc.reserved, err, tc.ok)
		}
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
	if err := CheckText("location", "line\n3", 255); err == nil {
		t.Error("CheckText accepted a newline")
	}
}
