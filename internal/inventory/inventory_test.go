package inventory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
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
	net, err := inventory.ParseNetwork(mode, "192.168.204.0/24", []string{"192.168.204.2"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: storetest.Open(t, dsn), now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	n := 0
	f.svc = inventory.New(f.st, inventory.Options{
		Network: net,
		Clock:   func() time.Time { f.now = f.now.Add(time.Second); return f.now },
		NewUUID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	})
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
		ID: 1, UUID: "00000000-0000-4000-8000-000000000001", Hostname: "edge-01",
		Personality: "edgeworker", Administrative: "locked", Operational: "disabled",
		Availability: "offline", InvProvision: "unprovisioned", MgmtMAC: "52:54:00:aa:00:01",
		MgmtIP: "192.168.204.10", Location: "line 3", Group: "press",
		Labels: map[string]string{"zone": "n"}, CreatedAt: h.CreatedAt, UpdatedAt: h.CreatedAt,
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
	evs, err := f.svc.Events(ctx, store.EventFilter{})
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

func testDynamic(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker"}); problem.FieldOf(err) != "mgmt_mac" {
		t.Errorf("dynamic edgeworker without MAC: %v", err)
	}
	if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtMAC: "52:54:00:00:00:01", MgmtIP: "192.168.204.9"}); problem.FieldOf(err) != "mgmt_ip" {
		t.Errorf("dynamic edgeworker with an IP: %v", err)
	}
	h, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtMAC: "52:54:00:00:00:01"})
	if err != nil || h.MgmtIP != "" {
		t.Errorf("dynamic edgeworker: %+v, %v", h, err)
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
