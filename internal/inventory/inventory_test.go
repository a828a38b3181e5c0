package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/mgmtnet"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// fixture is a Service on a real database with a fake clock and
// predictable uuids.
type fixture struct {
	svc *inventory.Service
	st  store.Store
	now time.Time
}

func newFixture(t *testing.T, dsn, mode string) *fixture {
	t.Helper()
	f := &fixture{st: storetest.Open(t, dsn), now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	n := 0
	f.svc = inventory.New(f.st, inventory.Options{
		Clock:   func() time.Time { f.now = f.now.Add(time.Second); return f.now },
		NewUUID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	})
	if _, _, err := f.svc.EnsureManagementPool(context.Background(), mode, "192.168.204.0/24", []string{"192.168.204.2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddGroup(context.Background(), "t", "press", "the press line"); err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func TestService(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("lifecycle", func(t *testing.T) { t.Parallel(); testLifecycle(t, newFixture(t, b.DSN(t), "static")) })
			t.Run("rules", func(t *testing.T) { t.Parallel(); testRules(t, newFixture(t, b.DSN(t), "static")) })
			t.Run("dynamic", func(t *testing.T) { t.Parallel(); testDynamic(t, newFixture(t, b.DSN(t), "dynamic")) })
			t.Run("pools", func(t *testing.T) { t.Parallel(); testPools(t, newFixture(t, b.DSN(t), "dynamic")) })
			t.Run("dhcp view", func(t *testing.T) { t.Parallel(); testDHCPView(t, newFixture(t, b.DSN(t), "dynamic")) })
			t.Run("labels", func(t *testing.T) { t.Parallel(); testLabels(t, newFixture(t, b.DSN(t), "static")) })
			t.Run("groups", func(t *testing.T) { t.Parallel(); testGroups(t, newFixture(t, b.DSN(t), "static")) })
			t.Run("group labels", func(t *testing.T) { t.Parallel(); testGroupLabels(t, newFixture(t, b.DSN(t), "static")) })
			t.Run("ssh login", func(t *testing.T) { t.Parallel(); testSSHLogin(t, newFixture(t, b.DSN(t), "static")) })
		})
	}
}

func testLifecycle(t *testing.T, f *fixture) {
	ctx := context.Background()
	h, err := f.svc.Add(ctx, "tok-admin", apitype.HostCreate{
		Hostname: "edge-01", Personality: "edgeworker", MgmtMAC: "52:54:00:AA:00:01",
		MgmtIP: "192.168.204.10", Location: "line 3", Group: "press", Labels: map[string]string{"zone": "n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Host{
		ID: 1, UUID: "00000000-0000-4000-8000-000000000004", Hostname: "edge-01",
		Personality: "edgeworker", Administrative: "locked", Operational: "disabled",
		Availability: "offline", InvProvision: "unprovisioned", MgmtMAC: "52:54:00:aa:00:01",
		MgmtIP: "192.168.204.10", Location: "line 3", Group: "press",
		Labels: map[string]string{"zone": "n"}, PoolID: 1, PoolName: "management",
		CreatedAt: h.CreatedAt, UpdatedAt: h.CreatedAt,
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("Add (-want +got):\n%s", diff)
	}
	for _, ref := range []string{"1", want.UUID, "edge-01", "EDGE-01"} {
		got, err := f.svc.Get(ctx, ref)
		if err != nil {
			t.Errorf("Get(%q): %v", ref, err)
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Get(%q) (-want +got):\n%s", ref, diff)
		}
	}
	if _, err := f.svc.Get(ctx, "edge-99"); !problem.Is(err, problem.NotFound) {
		t.Errorf("Get(edge-99) = %v, want not found", err)
	}

	up, err := f.svc.Update(ctx, "tok-op", "edge-01", apitype.HostUpdate{Location: ptr("hall 2"), Hostname: ptr("edge-1a")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Location != "hall 2" || up.Hostname != "edge-1a" || !up.UpdatedAt.After(up.CreatedAt) {
		t.Errorf("Update gave %+v", up)
	}
	// A patch that changes nothing logs nothing.
	if _, err := f.svc.Update(ctx, "tok-op", "edge-1a", apitype.HostUpdate{Location: ptr("hall 2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(ctx, "tok-op", "1"); err != nil {
		t.Fatal(err)
	}
	evs, err := f.svc.Events(ctx, store.EventFilter{EntityType: "host"})
	if err != nil {
		t.Fatal(err)
	}
	type ev struct{ Code, Entity, Action, Actor, Reason string }
	var got []ev
	for _, e := range evs {
		got = append(got, ev{e.Code, e.EntityID, e.Action, e.Actor, e.Reason})
	}
	wantEv := []ev{
		{"200.021", "host=edge-1a", "host.delete", "tok-op", "host edge-1a deleted"},
		{"200.021", "host=edge-1a", "host.update", "tok-op", "host edge-1a updated: hostname, location"},
		{"200.020", "host=edge-01", "host.add", "tok-admin", "host edge-01 added with personality edgeworker"},
	}
	if diff := cmp.Diff(wantEv, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func testRules(t *testing.T, f *fixture) {
	ctx := context.Background()
	add := func(req apitype.HostCreate) error {
		_, err := f.svc.Add(ctx, "t", req)
		return err
	}
	if err := add(apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtMAC: "52:54:00:00:00:01", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	if err := add(apitype.HostCreate{Hostname: "worker-0", Personality: "worker", MgmtIP: "192.168.204.20", BMType: "ipmi", BMIP: "10.0.0.5"}); err != nil {
		t.Fatalf("worker with BMC: %v", err)
	}
	for _, tc := range []struct {
		name  string
		req   apitype.HostCreate
		kind  problem.Kind
		field string
	}{
		{"dup hostname", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.11"}, problem.Conflict, "hostname"},
		{"dup mac", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtMAC: "52-54-00-00-00-01", MgmtIP: "192.168.204.11"}, problem.Conflict, "mgmt_mac"},
		{"dup ip", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.10"}, problem.Conflict, "mgmt_ip"},
		{"no ip", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker"}, problem.Invalid, "mgmt_ip"},
		{"controller ip", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.2"}, problem.Invalid, "mgmt_ip"},
		{"no personality", apitype.HostCreate{Hostname: "edge-02", MgmtIP: "192.168.204.11"}, problem.Invalid, "personality"},
		{"bad personality", apitype.HostCreate{Hostname: "edge-02", Personality: "edge", MgmtIP: "192.168.204.11"}, problem.Invalid, "personality"},
		{"edgeworker bmc", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", BMIP: "10.0.0.6"}, problem.Invalid, "bm_ip"},
		{"bad bm_type", apitype.HostCreate{Hostname: "w-2", Personality: "worker", MgmtIP: "192.168.204.11", BMType: "ilo"}, problem.Invalid, "bm_type"},
		{"bad label", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", Labels: map[string]string{"a b": "c"}}, problem.Invalid, "labels"},
		{"bad group", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", Group: "Press"}, problem.Invalid, "group"},
		{"bad ssh_user", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", SSHUser: "Root!"}, problem.Invalid, "ssh_user"},
		{"ssh_key path", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", SSHKey: "../id_rsa"}, problem.Invalid, "ssh_key"},
	} {
		err := add(tc.req)
		if problem.KindOf(err) != tc.kind || problem.FieldOf(err) != tc.field {
			t.Errorf("%s: got %v (kind %v, field %q), want kind %v field %q", tc.name, err, problem.KindOf(err), problem.FieldOf(err), tc.kind, tc.field)
		}
	}

	// Changing a worker to an edgeworker must clear its BMC fields.
	_, err := f.svc.Update(ctx, "t", "worker-0", apitype.HostUpdate{Personality: ptr("edgeworker")})
	if problem.FieldOf(err) != "bm_type" {
		t.Errorf("worker→edgeworker keeping BMC: %v", err)
	}
	if _, err := f.svc.Update(ctx, "t", "worker-0", apitype.HostUpdate{Personality: ptr("edgeworker"), BMType: ptr(""), BMIP: ptr("")}); err != nil {
		t.Errorf("worker→edgeworker clearing BMC: %v", err)
	}

	// A provisioned host keeps its personality and hostname; a host being
	// provisioned cannot be deleted.
	setProvision(t, f, "edge-01", inventory.ProvProvisioned)
	for _, u := range []apitype.HostUpdate{{Personality: ptr("worker")}, {Hostname: ptr("edge-1b")}} {
		if _, err := f.svc.Update(ctx, "t", "edge-01", u); !problem.Is(err, problem.Conflict) {
			t.Errorf("update provisioned host %+v: %v, want conflict", u, err)
		}
	}
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{Location: ptr("cell 4")}); err != nil {
		t.Errorf("location of a provisioned host: %v", err)
	}
	setProvision(t, f, "edge-01", inventory.ProvProvisioning)
	if _, err := f.svc.Delete(ctx, "t", "edge-01"); !problem.Is(err, problem.Conflict) {
		t.Errorf("delete while provisioning: %v, want conflict", err)
	}
	if err := f.svc.Upgrade(ctx, "t", "edge-01"); !problem.Is(err, problem.NotSupported) {
		t.Errorf("upgrade edgeworker: %v, want not supported", err)
	}
}

// testSSHLogin: the SSH user and key name the controller provisions a host
// with are stored on add, replaced and cleared by a patch, and checked.
func testSSHLogin(t *testing.T, f *fixture) {
	ctx := context.Background()
	h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker",
		MgmtIP: "192.168.204.10", SSHUser: "hummingbird", SSHKey: "site-a"})
	if err != nil {
		t.Fatal(err)
	}
	type login struct{ User, Key string }
	check := func(what string, want login) {
		t.Helper()
		got, err := f.svc.Get(ctx, "edge-01")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, login{got.SSHUser, got.SSHKey}); diff != "" {
			t.Errorf("%s: stored login (-want +got):\n%s", what, diff)
		}
	}
	if diff := cmp.Diff(login{"hummingbird", "site-a"}, login{h.SSHUser, h.SSHKey}); diff != "" {
		t.Errorf("Add (-want +got):\n%s", diff)
	}
	check("after add", login{"hummingbird", "site-a"})

	// The longest names allowed, and the characters each may have.
	long := login{"_" + strings.Repeat("a-9_", 7) + "bcd", "K" + strings.Repeat("y.9_-", 12) + "abc"}
	if len(long.User) != 32 || len(long.Key) != 64 {
		t.Fatalf("test names are %d and %d long", len(long.User), len(long.Key))
	}
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{SSHUser: &long.User, SSHKey: &long.Key}); err != nil {
		t.Fatalf("update to the longest names: %v", err)
	}
	check("after update", long)
	// A patch without them leaves them; an empty string clears each.
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{Location: ptr("line 3")}); err != nil {
		t.Fatal(err)
	}
	check("after an unrelated update", long)
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{SSHUser: ptr("")}); err != nil {
		t.Fatal(err)
	}
	check("after clearing ssh_user", login{"", long.Key})
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{SSHKey: ptr(""), SSHUser: ptr("ops")}); err != nil {
		t.Fatal(err)
	}
	check("after clearing ssh_key", login{"ops", ""})

	for _, tc := range []struct{ field, v string }{
		{"ssh_user", "Root!"}, {"ssh_user", "root "}, {"ssh_user", "9ops"}, {"ssh_user", "-ops"},
		{"ssh_user", "a" + strings.Repeat("b", 32)}, {"ssh_user", "ops@edge"},
		{"ssh_key", "../id_rsa"}, {"ssh_key", "/etc/hummingbird/ssh/site-a"}, {"ssh_key", "keys/site-a"},
		{"ssh_key", ".default"}, {"ssh_key", "-x"}, {"ssh_key", "site a"}, {"ssh_key", "k" + strings.Repeat("e", 64)},
		{"ssh_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"},
	} {
		u := apitype.HostUpdate{SSHUser: &tc.v}
		if tc.field == "ssh_key" {
			u = apitype.HostUpdate{SSHKey: &tc.v}
		}
		_, err := f.svc.Update(ctx, "t", "edge-01", u)
		if !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != tc.field {
			t.Errorf("%s %q: %v, want invalid %s", tc.field, tc.v, err, tc.field)
		} else if strings.Contains(err.Error(), "b3BlbnNzaC1rZXktdjE=") {
			t.Errorf("%s: the refusal repeats the private key: %v", tc.field, err)
		}
	}
	check("after the refusals", login{"ops", ""})

	evs, err := f.svc.Events(ctx, store.EventFilter{EntityType: "host", Action: "host.update"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs {
		reasons = append(reasons, e.Reason)
	}
	want := []string{
		"host edge-01 updated: ssh_user, ssh_key",
		"host edge-01 updated: ssh_user",
		"host edge-01 updated: location",
		"host edge-01 updated: ssh_user, ssh_key",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("update events (-want +got):\n%s", diff)
	}
}

func testDynamic(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker"}); problem.FieldOf(err) != "mgmt_mac" {
		t.Errorf("dynamic edgeworker without MAC: %v", err)
	}
	// Allocation starts at the lowest address that is neither the network
	// address nor the controllers' (.2 is reserved); a pinned address is
	// taken as given; deleting a host frees its address.
	var got []string
	for i, pin := range []string{"", "", "192.168.204.50", ""} {
		h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: fmt.Sprintf("edge-%d", i), Personality: "edgeworker",
			MgmtMAC: fmt.Sprintf("52:54:00:00:00:%02x", i+1), MgmtIP: pin})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.MgmtIP)
	}
	if diff := cmp.Diff([]string{"192.168.204.1", "192.168.204.3", "192.168.204.50", "192.168.204.4"}, got); diff != "" {
		t.Errorf("allocated addresses (-want +got):\n%s", diff)
	}
	if _, err := f.svc.Delete(ctx, "t", "edge-1"); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-9", Personality: "edgeworker", MgmtMAC: "52:54:00:00:00:99"})
	if err != nil || h.MgmtIP != "192.168.204.3" {
		t.Errorf("after freeing .3: %q, %v", h.MgmtIP, err)
	}
	// Clearing the address of a dynamic host allocates again; a worker
	// without a MAC is allocated too.
	if h, err := f.svc.Update(ctx, "t", "edge-0", apitype.HostUpdate{MgmtIP: ptr("")}); err != nil || h.MgmtIP != "192.168.204.1" {
		t.Errorf("re-allocate edge-0: %q, %v", h.MgmtIP, err)
	}
	if h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "worker-0", Personality: "worker"}); err != nil || h.MgmtIP != "192.168.204.5" {
		t.Errorf("worker: %q, %v", h.MgmtIP, err)
	}
	// Allocation goes on past the pinned .50; addresses freed below where
	// it got to are given first, lowest first, then it goes on above.
	add := func(name string) string {
		t.Helper()
		h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: name, Personality: "worker"})
		if err != nil {
			t.Fatal(err)
		}
		return h.MgmtIP
	}
	for i := 6; i <= 51; i++ {
		if i == 50 {
			continue
		}
		if got, want := add(fmt.Sprintf("worker-%d", i)), fmt.Sprintf("192.168.204.%d", i); got != want {
			t.Fatalf("worker-%d: %s, want %s", i, got, want)
		}
	}
	for _, h := range []string{"worker-30", "worker-7"} {
		if _, err := f.svc.Delete(ctx, "t", h); err != nil {
			t.Fatal(err)
		}
	}
	got = []string{add("worker-a"), add("worker-b"), add("worker-c")}
	if diff := cmp.Diff([]string{"192.168.204.7", "192.168.204.30", "192.168.204.52"}, got); diff != "" {
		t.Errorf("after freeing .30 and .7 (-want +got):\n%s", diff)
	}
	// A host moved off an address frees it the same way.
	if _, err := f.svc.Update(ctx, "t", "worker-9", apitype.HostUpdate{MgmtIP: ptr("192.168.204.60")}); err != nil {
		t.Fatal(err)
	}
	if got := add("worker-d"); got != "192.168.204.9" {
		t.Errorf("after worker-9 moved to .60: %s, want 192.168.204.9", got)
	}
}

func testPools(t *testing.T, f *fixture) {
	ctx := context.Background()
	site, err := f.svc.AddPool(ctx, "t", apitype.PoolCreate{Name: "site-a", Network: "10.20.0.0/24", Mode: "dynamic",
		Ranges: []string{"10.20.0.100-10.20.0.101"}, Gateway: "10.20.0.1", DNS: []string{"10.20.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if site.Row.Role != "edge" || site.Lease != inventory.DefaultLease {
		t.Errorf("site-a: %+v", site.Row)
	}
	for _, tc := range []struct {
		req   apitype.PoolCreate
		kind  problem.Kind
		field string
	}{
		{apitype.PoolCreate{Name: "site-a", Network: "10.21.0.0/24", Mode: "static"}, problem.Conflict, "name"},
		{apitype.PoolCreate{Name: "site-b", Network: "10.20.0.128/25", Mode: "static"}, problem.Conflict, "network"},
		{apitype.PoolCreate{Name: "site-b", Network: "192.168.0.0/16", Mode: "static"}, problem.Conflict, "network"},
		{apitype.PoolCreate{Name: "site-b", Network: "10.21.0.0/24", Mode: "sometimes"}, problem.Invalid, "mode"},
	} {
		if _, err := f.svc.AddPool(ctx, "t", tc.req); problem.KindOf(err) != tc.kind || problem.FieldOf(err) != tc.field {
			t.Errorf("AddPool(%+v) = %v, want %v on %q", tc.req, err, tc.kind, tc.field)
		}
	}
	add := func(name, mac string) (store.Host, error) {
		return f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: name, Personality: "edgeworker", MgmtMAC: mac, Pool: "site-a"})
	}
	a, err := add("edge-a1", "52:54:00:00:0a:01")
	if err != nil || a.MgmtIP != "10.20.0.100" || a.PoolName != "site-a" {
		t.Fatalf("edge-a1: %+v, %v", a, err)
	}
	if _, err := add("edge-a2", "52:54:00:00:0a:02"); err != nil {
		t.Fatal(err)
	}
	if _, err := add("edge-a3", "52:54:00:00:0a:03"); !problem.Is(err, problem.Conflict) || problem.FieldOf(err) != "mgmt_ip" {
		t.Errorf("third host in a two-address range: %v, want a conflict on mgmt_ip", err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "x", Personality: "worker", Pool: "nowhere"}); problem.FieldOf(err) != "pool" {
		t.Errorf("unknown pool: %v", err)
	}
	// A pool in use cannot go; the management pool never can.
	if err := f.svc.DeletePool(ctx, "t", "site-a"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "edge-a1, edge-a2") {
		t.Errorf("delete pool in use: %v", err)
	}
	if err := f.svc.DeletePool(ctx, "t", "management"); !problem.Is(err, problem.NotSupported) {
		t.Errorf("delete management pool: %v", err)
	}
	// Moving a host to the management pool gives it an address there.
	moved, err := f.svc.Update(ctx, "t", "edge-a2", apitype.HostUpdate{Pool: ptr("management")})
	if err != nil || moved.PoolName != "management" || moved.MgmtIP != "192.168.204.1" {
		t.Errorf("move to management: %+v, %v", moved, err)
	}
	if _, err := f.svc.Delete(ctx, "t", "edge-a1"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeletePool(ctx, "t", "site-a"); err != nil {
		t.Errorf("delete unused pool: %v", err)
	}
	pools, err := f.svc.ListPools(ctx)
	if err != nil || len(pools) != 1 || pools[0].Used != 1 {
		t.Errorf("pools after delete: %+v, %v", pools, err)
	}
}

func testDHCPView(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.AddPool(ctx, "t", apitype.PoolCreate{Name: "site-a", Network: "10.20.0.0/24", Mode: "dynamic",
		Gateway: "10.20.0.1", DNS: []string{"10.20.0.53"}, NTP: []string{"10.20.0.123"}, LeaseSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-a1", Personality: "edgeworker", MgmtMAC: "52:54:00:00:0a:01", Pool: "site-a"}); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("52:54:00:00:0a:01")
	b, err := f.svc.Binding(ctx, mac, netip.MustParseAddr("10.20.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := mgmtnet.Binding{HostID: 1, Hostname: "edge-a1", MAC: mac, IP: netip.MustParseAddr("10.20.0.2"),
		Network: netip.MustParsePrefix("10.20.0.0/24"), Gateway: netip.MustParseAddr("10.20.0.1"),
		DNS: []netip.Addr{netip.MustParseAddr("10.20.0.53")}, NTP: []netip.Addr{netip.MustParseAddr("10.20.0.123")},
		Lease: 10 * time.Minute, PoolID: 2, PoolName: "site-a"}
	if diff := cmp.Diff(want, b, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Binding (-want +got):\n%s", diff)
	}
	// The same MAC asking from the management subnet gets nothing there.
	if _, err := f.svc.Binding(ctx, mac, netip.MustParseAddr("192.168.204.1")); !errors.Is(err, mgmtnet.ErrNotHere) {
		t.Errorf("binding from another subnet: %v, want ErrNotHere", err)
	}
	unknown, _ := net.ParseMAC("52:54:00:ff:ff:ff")
	if _, err := f.svc.Binding(ctx, unknown, netip.MustParseAddr("10.20.0.1")); !errors.Is(err, mgmtnet.ErrUnknownMAC) {
		t.Errorf("unknown MAC: %v", err)
	}
	// Reported twice in a row, an unknown MAC is one event.
	for i := 0; i < 2; i++ {
		if err := f.svc.Discovered(ctx, unknown, netip.MustParseAddr("10.20.0.1")); err != nil {
			t.Fatal(err)
		}
	}
	// The first lease is an event; a renewal of the same address is not.
	exp := f.now.Add(time.Hour)
	for i := 0; i < 2; i++ {
		if err := f.svc.Leased(ctx, b, exp); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := f.svc.Events(ctx, store.EventFilter{EntityType: "host"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action+" "+e.EntityID)
	}
	if diff := cmp.Diff([]string{"host.leased host=edge-a1", "host.discovered mac=52:54:00:ff:ff:ff", "host.add host=edge-a1"}, actions); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if err := f.svc.Released(ctx, mac); err != nil {
		t.Fatal(err)
	}
}

func setProvision(t *testing.T, f *fixture, name, state string) {
	t.Helper()
	err := f.st.Write(context.Background(), func(tx store.Tx) error {
		h, err := tx.HostByHostname(name)
		if err != nil {
			return err
		}
		h.InvProvision = state
		return tx.UpdateHost(&h)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testLabels(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10",
		Labels: map[string]string{"zone": "north"}}); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.AssignLabels(ctx, "op", "edge-01", map[string]string{"tier": "a", "zone": "south"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"tier": "a", "zone": "south"}, h.Labels); diff != "" {
		t.Errorf("after assign (-want +got):\n%s", diff)
	}
	// Assigning what is there already changes nothing and logs nothing.
	if _, err := f.svc.AssignLabels(ctx, "op", "edge-01", map[string]string{"tier": "a"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{nil, {"bad key": "x"}, {"hummingbird.io/group": "x"}, {"zone": "bad value!"}} {
		if _, err := f.svc.AssignLabels(ctx, "op", "edge-01", bad); !problem.Is(err, problem.Invalid) {
			t.Errorf("assign %v: %v, want invalid", bad, err)
		}
	}
	// Removing a missing key removes nothing, not even the keys that exist.
	if _, err := f.svc.RemoveLabels(ctx, "op", "edge-01", []string{"tier", "nope"}); !problem.Is(err, problem.NotFound) {
		t.Errorf("remove with a missing key: %v, want not found", err)
	}
	h, err = f.svc.Get(ctx, "edge-01")
	if err != nil || len(h.Labels) != 2 {
		t.Errorf("after a refused remove: %v, %v", h.Labels, err)
	}
	if h, err = f.svc.RemoveLabels(ctx, "op", "edge-01", []string{"tier"}); err != nil || len(h.Labels) != 1 {
		t.Errorf("remove tier: %v, %v", h.Labels, err)
	}
	evs, err := f.svc.Events(ctx, store.EventFilter{EntityType: "host"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "host.label.") {
			reasons = append(reasons, e.Reason)
		}
	}
	want := []string{"host edge-01 labels: remove tier", "host edge-01 labels: assign tier=a, zone=south"}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("label events (-want +got):\n%s", diff)
	}
}

func testGroups(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kind problem.Kind
	}{{"press", problem.Conflict}, {"Press", problem.Invalid}, {"", problem.Invalid}, {strings.Repeat("g", 64), problem.Invalid}} {
		if _, err := f.svc.AddGroup(ctx, "t", tc.name, ""); problem.KindOf(err) != tc.kind {
			t.Errorf("AddGroup(%q) = %v, want %v", tc.name, err, tc.kind)
		}
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10", Group: "paint"}); problem.FieldOf(err) != "group" {
		t.Errorf("host in a group never added: %v", err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10", Group: "press"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{Group: ptr("paint")}); problem.FieldOf(err) != "group" {
		t.Errorf("move to a group never added: %v", err)
	}
	if err := f.svc.DeleteGroup(ctx, "t", "press"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "edge-01") {
		t.Errorf("delete a group with members: %v", err)
	}
	g, err := f.svc.GetGroup(ctx, "press")
	if err != nil || len(g.Members) != 1 || g.Description != "the press line" {
		t.Errorf("GetGroup: %+v, %v", g, err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{Group: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteGroup(ctx, "t", "press"); err != nil {
		t.Errorf("delete an empty group: %v", err)
	}
	if err := f.svc.DeleteGroup(ctx, "t", "press"); !problem.Is(err, problem.NotFound) {
		t.Errorf("delete it again: %v", err)
	}
}

func testGroupLabels(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.GroupLabels(ctx, "nope"); !problem.Is(err, problem.NotFound) || !strings.Contains(err.Error(), "hbctl group-list") {
		t.Errorf("labels of an unknown group: %v, want not found naming hbctl group-list", err)
	}
	if _, err := f.svc.AssignGroupLabels(ctx, "op", "nope", map[string]string{"line": "3"}); !problem.Is(err, problem.NotFound) {
		t.Errorf("assign to an unknown group: %v, want not found", err)
	}
	if _, err := f.svc.RemoveGroupLabels(ctx, "op", "nope", []string{"line"}); !problem.Is(err, problem.NotFound) {
		t.Errorf("remove from an unknown group: %v, want not found", err)
	}
	if l, err := f.svc.GroupLabels(ctx, "press"); err != nil || l == nil || len(l) != 0 {
		t.Errorf("labels of a new group: %#v, %v; want an empty map", l, err)
	}
	l, err := f.svc.AssignGroupLabels(ctx, "op", "press", map[string]string{"line": "3", "zone": "north"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"line": "3", "zone": "north"}, l); diff != "" {
		t.Errorf("after assign (-want +got):\n%s", diff)
	}
	// Assigning what is there already changes nothing and logs nothing.
	if _, err := f.svc.AssignGroupLabels(ctx, "op", "press", map[string]string{"line": "3"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{nil, {"bad key": "x"}, {"hummingbird.io/group": "x"}, {"zone": "bad value!"}} {
		if _, err := f.svc.AssignGroupLabels(ctx, "op", "press", bad); !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != "labels" {
			t.Errorf("assign %v: %v, want invalid labels", bad, err)
		}
	}
	// The prefix hummingbird.io/ is the controller's, for groups and hosts alike.
	if _, err := f.svc.AssignGroupLabels(ctx, "op", "press", map[string]string{"hummingbird.io/personality": "worker"}); problem.FieldOf(err) != "labels" ||
		!strings.Contains(err.Error(), "Hummingbird's own") || !strings.Contains(err.Error(), "hummingbird.io/personality") {
		t.Errorf("group label under the reserved prefix: %v", err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10",
		Labels: map[string]string{"hummingbird.io/group": "paint"}}); problem.FieldOf(err) != "labels" || !strings.Contains(err.Error(), "Hummingbird's own") {
		t.Errorf("host added with a label under the reserved prefix: %v", err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10", Group: "press"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AssignLabels(ctx, "op", "edge-01", map[string]string{"hummingbird.io/x": "y"}); problem.FieldOf(err) != "labels" || !strings.Contains(err.Error(), "Hummingbird's own") {
		t.Errorf("host label under the reserved prefix: %v", err)
	}
	// Removing a missing key removes nothing, not even the keys that exist.
	if _, err := f.svc.RemoveGroupLabels(ctx, "op", "press", []string{"line", "nope"}); !problem.Is(err, problem.NotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("remove with a missing key: %v, want not found", err)
	}
	if l, err := f.svc.GroupLabels(ctx, "press"); err != nil || len(l) != 2 {
		t.Errorf("after a refused remove: %v, %v", l, err)
	}
	if _, err := f.svc.RemoveGroupLabels(ctx, "op", "press", nil); problem.FieldOf(err) != "keys" {
		t.Errorf("remove no key: %v, want invalid keys", err)
	}
	if l, err = f.svc.RemoveGroupLabels(ctx, "op", "press", []string{"line"}); err != nil || !cmp.Equal(l, map[string]string{"zone": "north"}) {
		t.Errorf("remove line: %v, %v", l, err)
	}

	// group-show and group-list carry the labels; a group without any has an empty set.
	if _, err := f.svc.AddGroup(ctx, "t", "paint", ""); err != nil {
		t.Fatal(err)
	}
	g, err := f.svc.GetGroup(ctx, "press")
	if err != nil || !cmp.Equal(g.Labels, map[string]string{"zone": "north"}) || len(g.Members) != 1 {
		t.Errorf("GetGroup: %+v, %v", g, err)
	}
	groups, err := f.svc.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, g := range groups {
		got[g.Name] = g.Labels
	}
	if diff := cmp.Diff(map[string]map[string]string{"paint": {}, "press": {"zone": "north"}}, got); diff != "" {
		t.Errorf("ListGroups labels (-want +got):\n%s", diff)
	}

	evs, err := f.svc.Events(ctx, store.EventFilter{EntityType: "group", EntityID: "group=press"})
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "group.label.") {
			recorded = append(recorded, e.Action+" "+e.Actor+": "+e.Reason)
		}
	}
	want := []string{"group.label.remove op: group press labels: remove line", "group.label.assign op: group press labels: assign line=3, zone=north"}
	if diff := cmp.Diff(want, recorded); diff != "" {
		t.Errorf("label events (-want +got):\n%s", diff)
	}

	// A group's labels go with it.
	if _, err := f.svc.Update(ctx, "t", "edge-01", apitype.HostUpdate{Group: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteGroup(ctx, "t", "press"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddGroup(ctx, "t", "press", ""); err != nil {
		t.Fatal(err)
	}
	if l, err := f.svc.GroupLabels(ctx, "press"); err != nil || len(l) != 0 {
		t.Errorf("labels of a group added again: %v, %v; want none", l, err)
	}
}
