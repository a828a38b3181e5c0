package inventory_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

func TestApps(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { t.Parallel(); testApps(t, newFixture(t, b.DSN(t), "static")) })
	}
}

func testApps(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, h := range []apitype.HostCreate{
		{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10", Group: "press"},
		{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11", Group: "press"},
		{Hostname: "edge-03", Personality: "edgeworker", MgmtIP: "192.168.204.12", Group: "press"},
		{Hostname: "edge-04", Personality: "edgeworker", MgmtIP: "192.168.204.13", Group: "paint"},
		{Hostname: "edge-05", Personality: "edgeworker", MgmtIP: "192.168.204.14"},
		{Hostname: "worker-0", Personality: "worker", MgmtIP: "192.168.204.15", Group: "press"},
	} {
		if h.Group == "paint" {
			if _, err := f.svc.AddGroup(ctx, "t", "paint", ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.svc.Add(ctx, "t", h); err != nil {
			t.Fatal(err)
		}
	}
	// A pool of the apps' segment, whose gateway, DNS, NTP and reserved
	// addresses no VIP may take; the DNS server is outside its network.
	if _, err := f.svc.AddPool(ctx, "t", apitype.PoolCreate{Name: "site-a", Network: "10.20.0.0/24", Mode: "static",
		Gateway: "10.20.0.1", DNS: []string{"10.20.0.3", "10.9.0.53"}, NTP: []string{"10.20.0.4"}, Reserved: []string{"10.20.0.5"}}); err != nil {
		t.Fatal(err)
	}
	good := apitype.AppCreate{Name: "plc-bridge", Group: "press", Image: "registry.example/plc-bridge:1.4", Port: 502,
		VIP: "10.20.0.50/24", Members: []string{"edge-02", "edge-01"}}
	with := func(change func(r *apitype.AppCreate)) apitype.AppCreate {
		r := good
		r.Members = append([]string(nil), good.Members...)
		change(&r)
		return r
	}
	for _, c := range []struct {
		name  string
		req   apitype.AppCreate
		kind  problem.Kind
		field string
		msg   string
	}{
		{"no name", with(func(r *apitype.AppCreate) { r.Name = "" }), problem.Invalid, "name", "app name is required"},
		{"bad name", with(func(r *apitype.AppCreate) { r.Name = "PLC" }), problem.Invalid, "name", "uppercase"},
		{"dotted name", with(func(r *apitype.AppCreate) { r.Name = "plc.bridge" }), problem.Invalid, "name", "one label"},
		{"long name", with(func(r *apitype.AppCreate) { r.Name = strings.Repeat("a", 57) }), problem.Invalid, "name", "at most 56"},
		{"no group", with(func(r *apitype.AppCreate) { r.Group = "" }), problem.Invalid, "group", "needs a group"},
		{"unknown group", with(func(r *apitype.AppCreate) { r.Group = "nope" }), problem.Invalid, "group", "hbctl group-add nope"},
		{"no image", with(func(r *apitype.AppCreate) { r.Image = "" }), problem.Invalid, "image", "needs an image"},
		{"bad image", with(func(r *apitype.AppCreate) { r.Image = "registry.example/PLC:1" }), problem.Invalid, "image", "lowercase"},
		{"port", with(func(r *apitype.AppCreate) { r.Port = 70000 }), problem.Invalid, "port", "1 to 65535"},
		{"negative port", with(func(r *apitype.AppCreate) { r.Port = -1 }), problem.Invalid, "port", "1 to 65535"},
		{"vip without prefix", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.50" }), problem.Invalid, "vip", "10.20.0.50/24"},
		{"vip network", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.0/24" }), problem.Invalid, "vip", "network address"},
		{"vip broadcast", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.255/24" }), problem.Invalid, "vip", "broadcast address"},
		{"vip of a host", with(func(r *apitype.AppCreate) { r.VIP = "192.168.204.12/24" }), problem.Conflict, "vip", "host edge-03"},
		{"vip of a controller", with(func(r *apitype.AppCreate) { r.VIP = "192.168.204.2/24" }), problem.Conflict, "vip", "reserved (a controller's address) of pool management"},
		{"vip of a reserved address", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.5/24" }), problem.Conflict, "vip", "reserved (a controller's address) of pool site-a"},
		{"vip of a gateway", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.1/24" }), problem.Conflict, "vip", "the gateway of pool site-a"},
		{"vip of a DNS server", with(func(r *apitype.AppCreate) { r.VIP = "10.9.0.53/16" }), problem.Conflict, "vip", "a DNS server of pool site-a"},
		{"vip of an NTP server", with(func(r *apitype.AppCreate) { r.VIP = "10.20.0.4/24" }), problem.Conflict, "vip", "an NTP server of pool site-a"},
		{"unknown health", with(func(r *apitype.AppCreate) { r.Health = "icmp" }), problem.Invalid, "health", "give tcp"},
		{"tcp health without port", with(func(r *apitype.AppCreate) { r.Port, r.Health = 0, "tcp" }), problem.Invalid, "health", "give --port"},
		{"path without http", with(func(r *apitype.AppCreate) { r.HealthPath = "/healthz" }), problem.Invalid, "health_path", "--health http"},
		{"bad health path", with(func(r *apitype.AppCreate) { r.Health, r.HealthPath = "http", "healthz" }), problem.Invalid, "health_path", "start with /"},
		{"unknown witness", with(func(r *apitype.AppCreate) { r.Witness = "edge-99" }), problem.Invalid, "witness", `no host "edge-99"`},
		{"member witness", with(func(r *apitype.AppCreate) { r.Witness = "edge-01" }), problem.Invalid, "witness", "edge-01 is a member of the app"},
		{"one member", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01"} }), problem.Invalid, "members", "at least 2"},
		{"member twice", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01", "edge-01"} }), problem.Invalid, "members", "edge-01 is named twice"},
		{"unknown member", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01", "edge-99"} }), problem.Invalid, "members", `no host "edge-99"`},
		{"worker member", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01", "worker-0"} }), problem.Conflict, "members", "worker-0 is a worker"},
		{"member of another group", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01", "edge-04"} }), problem.Conflict, "members", "edge-04 is in group paint"},
		{"member of no group", with(func(r *apitype.AppCreate) { r.Members = []string{"edge-01", "edge-05"} }), problem.Conflict, "members", "edge-05 is in no group"},
		{"group too small", with(func(r *apitype.AppCreate) { r.Group, r.Members = "paint", nil }), problem.Conflict, "members", "group paint has 1 edgeworker(s) (edge-04)"},
	} {
		_, err := f.svc.AddApp(ctx, "t", c.req)
		if !problem.Is(err, c.kind) || problem.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (%v, field %q); want %v on %s saying %q", c.name, err, problem.KindOf(err), problem.FieldOf(err), c.kind, c.field, c.msg)
		}
	}

	withWitness := good
	withWitness.Witness = "edge-05" // in no group: a witness needs none
	a, err := f.svc.AddApp(ctx, "tok-op", withWitness)
	if err != nil {
		t.Fatal(err)
	}
	uuidOf := func(name string) string {
		t.Helper()
		h, err := f.svc.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return h.UUID
	}
	want := store.App{ID: 1, UUID: a.UUID, Name: "plc-bridge", Group: "press", Image: "registry.example/plc-bridge:1.4", Port: 502,
		VIP: "10.20.0.50/24", HealthKind: "tcp", Witness: &store.AppMember{HostID: 5, Hostname: "edge-05", HostUUID: uuidOf("edge-05"),
			MgmtIP: "192.168.204.14", Availability: "offline"}, CreatedAt: a.CreatedAt, UpdatedAt: a.CreatedAt, Members: []store.AppMember{
			{HostID: 2, Hostname: "edge-02", HostUUID: uuidOf("edge-02"), MgmtIP: "192.168.204.11", Availability: "offline", Locked: true, Position: 1},
			{HostID: 1, Hostname: "edge-01", HostUUID: uuidOf("edge-01"), MgmtIP: "192.168.204.10", Availability: "offline", Locked: true, Position: 2},
		}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("AddApp (-want +got):\n%s", diff)
	}
	if a, err := f.svc.AddApp(ctx, "t", apitype.AppCreate{Name: "web", Group: "press", Image: "web:1", Port: 80, Health: "http",
		Members: []string{"edge-01", "edge-02"}}); err != nil || a.HealthKind != "http" || a.HealthPath != "/" {
		t.Errorf("an http check without a path: %+v, %v; want path /", a, err)
	} else if err := f.svc.DeleteApp(ctx, "t", "web"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.GetApp(ctx, "plc-bridge"); err != nil || !cmp.Equal(want, got) {
		t.Errorf("GetApp: %v; %s", err, cmp.Diff(want, got))
	}
	if _, err := f.svc.AddApp(ctx, "t", good); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "already an app named plc-bridge") {
		t.Errorf("the same app again: %v", err)
	}
	if _, err := f.svc.AddApp(ctx, "t", with(func(r *apitype.AppCreate) { r.Name = "other" })); !problem.Is(err, problem.Conflict) ||
		!strings.Contains(err.Error(), "address of app plc-bridge") {
		t.Errorf("another app on plc-bridge's vip: %v", err)
	}

	// Without members, every edgeworker of the group, by id; no port nor vip.
	all, err := f.svc.AddApp(ctx, "t", apitype.AppCreate{Name: "historian", Group: "press", Image: "historian@sha256:" + strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range all.Members {
		names = append(names, m.Hostname)
	}
	if !cmp.Equal(names, []string{"edge-01", "edge-02", "edge-03"}) || all.Port != 0 || all.VIP != "" {
		t.Errorf("an app without members: %+v; want edge-01, edge-02 and edge-03, no port, no vip", all)
	}
	apps, err := f.svc.ListApps(ctx)
	if err != nil || len(apps) != 2 || apps[0].Name != "historian" || apps[1].Name != "plc-bridge" {
		t.Errorf("ListApps: %+v, %v; want historian and plc-bridge", apps, err)
	}

	// The group and the members stay while the apps do.
	if err := f.svc.DeleteGroup(ctx, "t", "press"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "group press has apps: historian, plc-bridge") {
		t.Errorf("delete a group with apps: %v", err)
	}
	if _, err := f.svc.Delete(ctx, "t", "edge-02"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "member of app(s) historian, plc-bridge") {
		t.Errorf("delete a member: %v", err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-03", apitype.HostUpdate{Group: ptr("paint")}); !problem.Is(err, problem.Conflict) ||
		!strings.Contains(err.Error(), "app(s) historian and cannot be moved") {
		t.Errorf("move a member to another group: %v", err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-03", apitype.HostUpdate{Personality: ptr("worker")}); !problem.Is(err, problem.Conflict) {
		t.Errorf("change a member's personality: %v", err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-03", apitype.HostUpdate{Location: ptr("hall 2")}); err != nil {
		t.Errorf("another change to a member: %v", err)
	}
	if _, err := f.svc.Delete(ctx, "t", "edge-05"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "witness of app(s) plc-bridge") {
		t.Errorf("delete a witness: %v", err)
	}
	if _, err := f.svc.Update(ctx, "t", "edge-05", apitype.HostUpdate{Group: ptr("paint")}); err != nil {
		t.Errorf("move a witness to a group: %v", err)
	}

	if err := f.svc.DeleteApp(ctx, "tok-op", "plc-bridge"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteApp(ctx, "t", "plc-bridge"); !problem.Is(err, problem.NotFound) || !strings.Contains(err.Error(), "hbctl app-list") {
		t.Errorf("delete a deleted app: %v", err)
	}
	if _, err := f.svc.GetApp(ctx, "plc-bridge"); !problem.Is(err, problem.NotFound) {
		t.Errorf("get a deleted app: %v", err)
	}
	if err := f.svc.DeleteApp(ctx, "t", "historian"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(ctx, "t", "edge-02"); err != nil {
		t.Errorf("delete a former member: %v", err)
	}

	events, err := f.svc.Events(ctx, store.EventFilter{EntityType: "app", EntityID: "app=plc-bridge"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Action+" by "+e.Actor+": "+e.Reason)
	}
	if diff := cmp.Diff([]string{
		"app.delete by tok-op: app plc-bridge deleted from group press",
		"app.add by tok-op: app plc-bridge added to group press on edge-02, edge-01, with witness edge-05",
	}, got); diff != "" {
		t.Errorf("events of plc-bridge (-want +got):\n%s", diff)
	}
}

func TestCheckImage(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0f", 32)
	for _, ok := range []string{
		"nginx", "nginx:1.27", "library/nginx", "registry.example/plc-bridge:1.4", "localhost:5000/a/b_c__d-e.f:v1",
		"registry.example:443/plc/bridge@" + digest, "plc-bridge:1.4@" + digest, "localhost/app",
	} {
		if err := inventory.CheckImage(ok); err != nil {
			t.Errorf("CheckImage(%q): %v", ok, err)
		}
	}
	for bad, msg := range map[string]string{
		"":                                 "needs an image",
		"plc bridge":                       "space",
		"Plc-Bridge:1":                     "uppercase",
		"registry.example/a:":              "tag",
		"a:-x":                             "tag",
		"a@sha256:abc":                     "digest",
		"a@md5:" + strings.Repeat("0", 32): "digest",
		"reg_istry.example/a":              "registry",
		"registry.example:99999/a":         "port",
		"a//b":                             "path component",
		"a/-b":                             "path component",
		"/a":                               "path component",
	} {
		if err := inventory.CheckImage(bad); !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), msg) {
			t.Errorf("CheckImage(%q): %v; want it refused, saying %q", bad, err, msg)
		}
	}
}

func TestCheckVIP(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"10.20.0.50/24", "10.20.0.1/31", "10.20.0.7/32", "fd00::50/64", "fd00::1/128"} {
		if _, err := inventory.CheckVIP(ok); err != nil {
			t.Errorf("CheckVIP(%q): %v", ok, err)
		}
	}
	for bad, msg := range map[string]string{
		"10.20.0.50":          "prefix length",
		"10.20.0.50/33":       "prefix length",
		"10.20.0.0/24":        "network address",
		"10.20.0.255/24":      "broadcast address",
		"fd00::/64":           "network address",
		"0.0.0.0/0":           "unspecified",
		"127.0.0.5/8":         "loopback",
		"224.0.0.18/24":       "multicast",
		"::ffff:10.0.0.5/120": "IPv4 address in IPv6 form",
	} {
		if _, err := inventory.CheckVIP(bad); !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), msg) {
			t.Errorf("CheckVIP(%q): %v; want it refused, saying %q", bad, err, msg)
		}
	}
}

// TestAppSwitchover: a planned switchover needs an active member and a healthy standby on an
// available host; --to must name one. Each request gets the next number.
func TestAppSwitchover(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b.DSN(t), "static")
			ctx := context.Background()
			for i, name := range []string{"edge-01", "edge-02", "edge-03"} {
				if _, err := f.svc.Add(ctx, "t", apitype.HostCreate{Hostname: name, Personality: "edgeworker",
					MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: "press"}); err != nil {
					t.Fatal(err)
				}
			}
			a, err := f.svc.AddApp(ctx, "t", apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Members: []string{"edge-01", "edge-02", "edge-03"}})
			if err != nil {
				t.Fatal(err)
			}
			request := func(to, msg string) store.App {
				t.Helper()
				got, err := f.svc.RequestSwitchover(ctx, "tok-op", "plc", to)
				if msg == "" && err != nil {
					t.Fatalf("switchover to %q: %v", to, err)
				}
				if msg != "" && (err == nil || !strings.Contains(err.Error(), msg)) {
					t.Errorf("switchover to %q: %v; want it refused, saying %q", to, err, msg)
				}
				return got
			}
			request("", "no active member yet")
			// edge-01 active; edge-02 a healthy standby on an available host; edge-03 unhealthy.
			if err := f.st.Write(ctx, func(tx store.Tx) error {
				if _, err := tx.SetAppActive(a.ID, 1, 1); err != nil {
					return err
				}
				for _, s := range []store.AppMemberStatus{
					{HostID: 1, Role: "active", Healthy: true, ReportedAt: f.now},
					{HostID: 2, Role: "standby", Healthy: true, ReportedAt: f.now},
					{HostID: 3, Role: "standby", Healthy: false, ReportedAt: f.now},
				} {
					if err := tx.SetAppMemberStatus(a.ID, s); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			request("", "no healthy standby") // edge-02's host is offline
			if err := f.st.Write(ctx, func(tx store.Tx) error {
				for id := int64(1); id <= 3; id++ {
					if err := tx.SetHostState(id, "available", "enabled", f.now); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			request("edge-09", "not a member of app plc; its members are edge-01, edge-02, edge-03")
			request("edge-01", "edge-01 is the active member")
			request("edge-03", "member edge-03 of app plc is not a healthy standby")
			got := request("edge-02", "")
			if want := (store.AppSwitchover{Seq: 1, Pending: true, ToHostID: 2, ToHostname: "edge-02", RequestedAt: got.Switchover.RequestedAt}); got.Switchover != want {
				t.Errorf("switchover to edge-02: %+v, want %+v", got.Switchover, want)
			}
			if got := request("", ""); got.Switchover.Seq != 2 || got.Switchover.ToHostID != 0 || !got.Switchover.Pending {
				t.Errorf("a second switchover, to any standby: %+v; want number 2, pending, to any", got.Switchover)
			}
			if names := inventory.HealthyStandbys(got); len(names) != 1 || names[0].Hostname != "edge-02" {
				t.Errorf("healthy standbys: %+v, want edge-02", names)
			}
			events, err := f.svc.Events(ctx, store.EventFilter{EntityType: "app", Action: "app.switchover.request"})
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, e := range events {
				reasons = append(reasons, e.Actor+": "+e.Reason)
			}
			if diff := cmp.Diff([]string{
				"tok-op: planned switchover 2 of app plc requested: from edge-01 to any healthy standby",
				"tok-op: planned switchover 1 of app plc requested: from edge-01 to edge-02",
			}, reasons); diff != "" {
				t.Errorf("switchover events (-want +got):\n%s", diff)
			}
		})
	}
}
