package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/api"
	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/store"
)

// specAppCases adds, shows, lists and deletes apps, and checks that a group with apps and
// a host that is an app's member stay.
func specAppCases(t *testing.T, sh *specHarness) {
	t.Helper()
	srv := sh.specServerStart(t)
	h, admin, operator, reader := srv.h, srv.admin, srv.operator, srv.reader
	big := `{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	refused := func(tc specCase, want string) { t.Helper(); sh.specRefused(t, h, tc, want) }
	sh.do(t, h, specCase{name: "add group for apps", method: "POST", path: "/v1/groups", token: operator, body: `{"name":"press"}`, want: 201})
	for _, body := range []string{
		`{"hostname":"edge-a1","personality":"edgeworker","mgmt_ip":"192.168.204.70","group":"press"}`,
		`{"hostname":"edge-a2","personality":"edgeworker","mgmt_ip":"192.168.204.71","group":"press"}`,
		`{"hostname":"worker-a","personality":"worker","mgmt_ip":"192.168.204.72","group":"press"}`,
	} {
		sh.do(t, h, specCase{name: "add host for apps", method: "POST", path: "/v1/hosts", token: admin, body: body, want: 201})
	}
	const add = `{"name":"plc-bridge","group":"press","image":"registry.example/plc-bridge:1.4","port":502,"vip":"10.20.0.50/24","members":["edge-a2","edge-a1"]}`

	refused(specCase{name: "app add bad name", method: "POST", path: "/v1/apps", token: operator, want: 400,
		body: `{"name":"PLC","group":"press","image":"plc:1"}`}, "uppercase")
	refused(specCase{name: "app add unknown group", method: "POST", path: "/v1/apps", token: operator, want: 400,
		body: `{"name":"plc","group":"nope","image":"plc:1"}`}, "hbctl group-add nope")
	refused(specCase{name: "app add bad image", method: "POST", path: "/v1/apps", token: operator, want: 400,
		body: `{"name":"plc","group":"press","image":"plc bridge"}`}, "space")
	sh.do(t, h, specCase{name: "app add bad port", method: "POST", path: "/v1/apps", token: operator, want: 400, offSpec: true,
		body: `{"name":"plc","group":"press","image":"plc:1","port":70000}`})
	refused(specCase{name: "app add network vip", method: "POST", path: "/v1/apps", token: operator, want: 400,
		body: `{"name":"plc","group":"press","image":"plc:1","vip":"10.20.0.0/24"}`}, "network address")
	refused(specCase{name: "app add host's vip", method: "POST", path: "/v1/apps", token: operator, want: 409,
		body: `{"name":"plc","group":"press","image":"plc:1","vip":"192.168.204.71/24"}`}, "host edge-a2")
	refused(specCase{name: "app add worker member", method: "POST", path: "/v1/apps", token: operator, want: 409,
		body: `{"name":"plc","group":"press","image":"plc:1","members":["edge-a1","worker-a"]}`}, "worker-a is a worker")
	refused(specCase{name: "app add one member", method: "POST", path: "/v1/apps", token: operator, want: 400,
		body: `{"name":"plc","group":"press","image":"plc:1","members":["edge-a1"]}`}, "at least 2")
	sh.do(t, h, specCase{name: "app add unknown field", method: "POST", path: "/v1/apps", token: operator, want: 400, offSpec: true,
		body: `{"name":"plc","group":"press","image":"plc:1","replicas":2}`})
	sh.do(t, h, specCase{name: "app add too large", method: "POST", path: "/v1/apps", token: operator, body: big, want: 413, offSpec: true})
	sh.do(t, h, specCase{name: "app add by reader", method: "POST", path: "/v1/apps", token: reader, body: add, want: 403})
	sh.do(t, h, specCase{name: "app add without token", method: "POST", path: "/v1/apps", body: add, want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "app add unknown query", method: "POST", path: "/v1/apps?x=1", token: operator, body: add, want: 400, offSpec: true})

	body := sh.do(t, h, specCase{name: "app add", method: "POST", path: "/v1/apps", token: operator, body: add, want: 201})
	var app apitype.App
	if err := json.Unmarshal(body, &app); err != nil {
		t.Fatal(err)
	}
	want := []apitype.AppMember{{Hostname: "edge-a2", Position: 1, Availability: "offline"}, {Hostname: "edge-a1", Position: 2, Availability: "offline"}}
	if diff := cmp.Diff(want, app.Members); diff != "" || app.Active != "" || app.Epoch != 0 || app.VIP != "10.20.0.50/24" || app.Port != 502 {
		t.Errorf("app add: %s; want edge-a2 then edge-a1, no active member and epoch 0 (-want +got members):\n%s", body, diff)
	}
	refused(specCase{name: "app add again", method: "POST", path: "/v1/apps", token: operator, body: add, want: 409}, "already an app named plc-bridge")

	sh.do(t, h, specCase{name: "app list", method: "GET", path: "/v1/apps", token: reader, want: 200})
	sh.do(t, h, specCase{name: "app list unknown query", method: "GET", path: "/v1/apps?x=1", token: reader, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "app list without token", method: "GET", path: "/v1/apps", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "app show", method: "GET", path: "/v1/apps/plc-bridge", token: reader, want: 200})
	refused(specCase{name: "app show unknown", method: "GET", path: "/v1/apps/nope", token: reader, want: 404}, "hbctl app-list")
	sh.do(t, h, specCase{name: "app show unknown query", method: "GET", path: "/v1/apps/plc-bridge?x=1", token: reader, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "app show without token", method: "GET", path: "/v1/apps/plc-bridge", want: 401, offSpec: true})

	specSwitchoverCases(t, sh, srv, app.ID)

	// The group and the members stay while the app does.
	refused(specCase{name: "group delete with an app", method: "DELETE", path: "/v1/groups/press", token: operator, want: 409}, "group press has apps: plc-bridge")
	refused(specCase{name: "host delete of a member", method: "DELETE", path: "/v1/hosts/edge-a1", token: operator, want: 409}, "member of app(s) plc-bridge")

	sh.do(t, h, specCase{name: "app delete by reader", method: "DELETE", path: "/v1/apps/plc-bridge", token: reader, want: 403})
	sh.do(t, h, specCase{name: "app delete without token", method: "DELETE", path: "/v1/apps/plc-bridge", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "app delete unknown query", method: "DELETE", path: "/v1/apps/plc-bridge?x=1", token: operator, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "app delete", method: "DELETE", path: "/v1/apps/plc-bridge", token: operator, want: 204})
	sh.do(t, h, specCase{name: "app delete again", method: "DELETE", path: "/v1/apps/plc-bridge", token: operator, want: 404})
	sh.do(t, h, specCase{name: "host delete of a former member", method: "DELETE", path: "/v1/hosts/edge-a1", token: operator, want: 204})

	body = sh.do(t, h, specCase{name: "app events", method: "GET", path: "/v1/events?entity_type=app", token: reader, want: 200})
	var events apitype.EventList
	if err := json.Unmarshal(body, &events); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events.Events {
		actions = append(actions, e.Action+" "+e.EntityID)
	}
	if diff := cmp.Diff([]string{"app.delete app=plc-bridge", "app.switchover.request app=plc-bridge",
		"app.switchover.request app=plc-bridge", "app.add app=plc-bridge"}, actions); diff != "" {
		t.Errorf("app events (-want +got):\n%s", diff)
	}
}

// specSwitchoverCases asks for planned switchovers of plc-bridge (members edge-a2, edge-a1),
// whose members' reports are written to the store as the agent API would.
func specSwitchoverCases(t *testing.T, sh *specHarness, srv specServer, appID int64) {
	t.Helper()
	h, operator, reader := srv.h, srv.operator, srv.reader
	refused := func(tc specCase, want string) { t.Helper(); sh.specRefused(t, h, tc, want) }
	const path = "/v1/apps/plc-bridge/switchover"
	refused(specCase{name: "app switchover without an active member", method: "POST", path: path, token: operator, want: 409}, "no active member yet")
	report := func(standbyHealthy bool) {
		t.Helper()
		if err := srv.c.Store.Write(context.Background(), func(tx store.Tx) error {
			ids := map[string]int64{}
			for _, name := range []string{"edge-a1", "edge-a2"} {
				host, err := tx.HostByHostname(name)
				if err != nil {
					return err
				}
				ids[name] = host.ID
				if err := tx.SetHostState(host.ID, "available", "enabled", host.UpdatedAt); err != nil {
					return err
				}
			}
			if _, err := tx.SetAppActive(appID, ids["edge-a2"], 1); err != nil {
				return err
			}
			if err := tx.SetAppMemberStatus(appID, store.AppMemberStatus{HostID: ids["edge-a2"], Role: "active", Healthy: true, ReportedAt: time.Now()}); err != nil {
				return err
			}
			return tx.SetAppMemberStatus(appID, store.AppMemberStatus{HostID: ids["edge-a1"], Role: "standby", Healthy: standbyHealthy, ReportedAt: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	report(true)
	refused(specCase{name: "app switchover to a host that is no member", method: "POST", path: path, token: operator, want: 400,
		body: `{"to":"worker-a"}`}, "not a member of app plc-bridge")
	refused(specCase{name: "app switchover to the active member", method: "POST", path: path, token: operator, want: 409,
		body: `{"to":"edge-a2"}`}, "edge-a2 is the active member")
	refused(specCase{name: "app switchover of an unknown app", method: "POST", path: "/v1/apps/nope/switchover", token: operator, want: 404}, "hbctl app-list")
	sh.do(t, h, specCase{name: "app switchover by reader", method: "POST", path: path, token: reader, want: 403})
	sh.do(t, h, specCase{name: "app switchover without token", method: "POST", path: path, want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "app switchover unknown field", method: "POST", path: path, token: operator, body: `{"host":"edge-a1"}`, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "app switchover too large", method: "POST", path: path, token: operator, want: 413, offSpec: true,
		body: `{"to":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`})
	var app apitype.App
	if err := json.Unmarshal(sh.do(t, h, specCase{name: "app switchover", method: "POST", path: path, token: operator, want: 202,
		body: `{"to":"edge-a1"}`}), &app); err != nil {
		t.Fatal(err)
	}
	if p := app.PendingSwitchover; p == nil || p.Seq != 1 || p.To != "edge-a1" || app.Active != "edge-a2" || !cmp.Equal(app.Standbys, []string{"edge-a1"}) {
		t.Errorf("app switchover: %+v, pending %+v; want switchover 1 to edge-a1 pending, edge-a2 active, edge-a1 standing by", app, app.PendingSwitchover)
	}
	if err := json.Unmarshal(sh.do(t, h, specCase{name: "app switchover to any standby", method: "POST", path: path, token: operator, want: 202}), &app); err != nil {
		t.Fatal(err)
	}
	if p := app.PendingSwitchover; p == nil || p.Seq != 2 || p.To != "" {
		t.Errorf("a second switchover, to any standby: pending %+v; want number 2 to any", p)
	}
	report(false)
	refused(specCase{name: "app switchover without a healthy standby", method: "POST", path: path, token: operator, want: 409}, "no healthy standby")
}
