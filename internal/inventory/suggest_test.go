package inventory

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// proposalRE finds the values a message proposes to the person who reads
// it: a quoted value after "use", a value after "like" or "did you mean",
// one after "write it as" that ends the message, and the examples in
// Kubernetes' own messages ('…' after "e.g." or ", or").
var proposalRE = regexp.MustCompile(`use ("(?:[^"\\]|\\.)*")|like ("(?:[^"\\]|\\.)*"|[^\s,;()]+)|did you mean ([^\s?]+)\?|write it as ([^\s,;]+)$|(?:e\.g\.|,\s+or) '([^']*)'`)

// proposals returns the values err's message proposes. The message is
// where a proposal is made, so this test reads it as a person would.
func proposals(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, m := range proposalRE.FindAllStringSubmatch(err.Error(), -1) {
		for _, v := range m[1:] {
			if v == "" {
				continue
			}
			if strings.HasPrefix(v, `"`) {
				u, uerr := strconv.Unquote(v)
				if uerr != nil {
					t.Fatalf("message %q: %v", err, uerr)
				}
				v = u
			}
			out = append(out, v)
		}
	}
	return out
}

// TestProposalsPassTheirRules refuses bad values of every field whose
// message proposes a corrected value or an example, and checks that each
// value proposed passes the rule of that field: a caller who follows the
// advice is not refused again.
func TestProposalsPassTheirRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := New(storetest.Open(t, storetest.SQLiteDSN(t)), Options{})
	label := func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return problem.Invalidf("labels", "%q is not key=value", kv)
		}
		return CheckLabels(map[string]string{k: v})
	}
	pool := func(network string, ranges ...string) error {
		_, err := buildPool(store.Pool{Name: "site-a", Role: "edge", Mode: "dynamic", Network: network}, ranges, nil, nil, nil)
		return err
	}
	vip := func(s string) error { _, err := CheckVIP(s); return err }
	mac := func(s string) error { _, err := NormalizeMAC("mgmt_mac", s); return err }
	for _, tc := range []struct {
		field  string
		bad    []string
		refuse func(string) error // the check that refuses bad
		pass   func(string) error // the check a proposal must pass
	}{
		{"hostname", []string{"Edge_01", "EDGE-01", "edge_01", "edge 01", "Edge_", "edge.Line_3", "_edge", "12_34", "_1", "12.34_",
			"0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5b_d9cb_469f_a165_70867728950e", strings.Repeat("DEADBEEF", 4),
			"Édge", "edge!", "", "123", "-edge", "edge..01", strings.Repeat("E", 64), strings.Repeat("a.", 126) + "A",
			"A._", "A.-", "A." + strings.Repeat("a", 64)},
			CheckHostname, CheckHostname},
		{"app name", []string{"PLC_Bridge", "plc.bridge", "PLC-BRIDGE", "plc bridge", "0F8FAD5B-D9CB-469F-A165-70867728950E", strings.Repeat("P", 56)},
			CheckAppName, CheckAppName},
		{"mgmt_mac", []string{"52:54:00", "zz:54:00:ab:cd:01"}, mac, mac},
		{"image", []string{"", "a b", "reg_istry.example/x/y", "registry.example/PLC", "registry.example/plc-bridge:-1", "x/-y"},
			CheckImage, CheckImage},
		{"vip", []string{"10.20.0.50", "::ffff:10.20.0.50/120", "::ffff:10.20.0.0/120", "::ffff:10.20.0.255/120", "::ffff:127.0.0.1/104",
			"::ffff:10.0.0.1/64", "::ffff:0.0.0.0/96", "::ffff:10.20.0.50/128"}, vip, vip},
		{"label key", []string{"-zone=x", "zone_=x", "a/b/c=x", "Example.com/zone=x", strings.Repeat("k", 64) + "=x"}, label, func(k string) error { return label(k + "=x") }},
		{"label value", []string{"zone=has space", "zone=-x", "zone=" + strings.Repeat("v", 64)}, label, func(v string) error { return label("zone=" + v) }},
		{"host labels", []string{""}, func(string) error { _, err := svc.AssignLabels(ctx, "t", "edge-01", nil); return err }, label},
		{"group labels", []string{""}, func(string) error { _, err := svc.AssignGroupLabels(ctx, "t", "press", nil); return err }, label},
		{"group", []string{"Line-3", "a.b", "-x", strings.Repeat("g", 64)}, CheckGroup, CheckGroup},
		{"group name", []string{"", " ", "Press Line", "a.b"},
			func(s string) error { _, err := svc.AddGroup(ctx, "t", s, ""); return err }, CheckGroup},
		{"pool name", []string{"Site-A", "site_a"}, func(s string) error {
			_, err := buildPool(store.Pool{Name: s, Role: "edge", Mode: "dynamic", Network: "10.0.0.0/8"}, nil, nil, nil, nil)
			return err
		}, func(s string) error {
			_, err := buildPool(store.Pool{Name: s, Role: "edge", Mode: "dynamic", Network: "10.0.0.0/8"}, nil, nil, nil, nil)
			return err
		}},
		{"pool network", []string{"10.0.0", "10.1.0.5/24", "10.0.0.1/31", "10.0.0.2/30", "fd00::1/64", "fd00::1/127", "::ffff:10.0.0.1/120"},
			func(s string) error { return pool(s) }, func(s string) error { return pool(s) }},
		{"pool range", []string{"10.1.0.5", "x-y", "10.1.0.5-"}, func(r string) error { return pool("10.1.0.0/24", r) },
			func(r string) error {
				first, _, _ := strings.Cut(r, "-")
				p, err := prefix24(first)
				if err != nil {
					return err
				}
				return pool(p, r)
			}},
		{"ssh_user", []string{"Root", "1admin", "a b", strings.Repeat("u", 33)},
			func(s string) error { return checkSSH(&store.Host{SSHUser: s}) }, func(s string) error { return checkSSH(&store.Host{SSHUser: s}) }},
		{"ssh_key", []string{"/root/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----", ".hidden"},
			func(s string) error { return checkSSH(&store.Host{SSHKey: s}) }, func(s string) error { return checkSSH(&store.Host{SSHKey: s}) }},
	} {
		proposed := 0
		for _, bad := range tc.bad {
			err := tc.refuse(bad)
			if err == nil {
				t.Errorf("%s %q was accepted; the case needs a value the rule refuses", tc.field, bad)
				continue
			}
			for _, p := range proposals(t, err) {
				proposed++
				if perr := tc.pass(p); perr != nil {
					t.Errorf("%s %q: the message %q proposes %q, which is refused: %v", tc.field, bad, err, p, perr)
				}
			}
		}
		if proposed == 0 {
			t.Errorf("%s: no message proposed a value; the case tests nothing", tc.field)
		}
	}
}

// prefix24 is the /24 an IPv4 address is in, for a range proposed
// for another network.
func prefix24(addr string) (string, error) {
	i := strings.LastIndexByte(addr, '.')
	if i < 0 {
		return "", problem.Invalidf("ranges", "%q is not an IPv4 address", addr)
	}
	return addr[:i] + ".0/24", nil
}

// TestHostnameProposal: the name proposed for Edge_01 is edge-01, not
// edge_01 (which the same rule refuses), and names with nothing plain to
// propose get the rule in words.
func TestHostnameProposal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"Edge_01", []string{"edge-01"}},
		{"edge 01", []string{"edge-01"}},
		{"EDGE-01.Line_3", []string{"edge-01.line-3"}},
		{"Edge_", []string{"edge"}},
		{"_1", []string{"edge-01"}}, // digits only once trimmed: the rule's own example
		{"0F8FAD5B-D9CB-469F-A165-70867728950E", []string{"edge-01"}},
		{"Édge", []string{"edge-01"}},
	} {
		err := CheckHostname(tc.name)
		if err == nil {
			t.Fatalf("CheckHostname(%q) accepted it", tc.name)
		}
		if diff := cmp.Diff(tc.want, proposals(t, err)); diff != "" {
			t.Errorf("CheckHostname(%q) = %v; proposals (-want +got):\n%s", tc.name, err, diff)
		}
	}
}

// FuzzHostnameProposal: whatever the name, a name proposed for it passes
// CheckHostname, and as an app name CheckAppName when the app name rules
// (one label, 56 characters) leave the name to CheckHostname.
func FuzzHostnameProposal(f *testing.F) {
	for _, s := range []string{"Edge_01", "EDGE", "a_.b", "_1", "1_", "0F8FAD5B-D9CB-469F-A165-70867728950E", "Ab.-Cd-", " x ", "X" + strings.Repeat(".A", 130), "A._", "A." + strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if s := suggestHostname(name); s != "" {
			if err := CheckHostname(s); err != nil {
				t.Fatalf("suggestHostname(%q) = %q, which CheckHostname refuses: %v", name, s, err)
			}
		}
		for _, check := range []func(string) error{CheckHostname, CheckAppName} {
			err := check(name)
			if err == nil {
				continue
			}
			for _, p := range proposals(t, err) {
				if perr := check(p); perr != nil {
					t.Fatalf("%q: the message %q proposes %q, which is refused: %v", name, err, p, perr)
				}
			}
		}
	})
}
