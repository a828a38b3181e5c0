package api_test

import (
	"context"
	"testing"

	"hummingbird.io/hummingbird/internal/store"
)

func TestGoldenApps(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	op := g.goldenToken(t, "operator")
	reader := g.goldenToken(t, "reader")
	g.do(t, "", "POST", "/v1/groups", op, `{"name":"press","description":"the presses of hall 2"}`)
	for _, body := range []string{
		`{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.10","group":"press"}`,
		`{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","group":"press"}`,
		`{"hostname":"edge-03","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`,
	} {
		g.do(t, "", "POST", "/v1/hosts", g.admin, body)
	}
	g.do(t, "app_add", "POST", "/v1/apps", op,
		`{"name":"plc-bridge","group":"press","image":"registry.example/plc-bridge:1.4","port":502,"vip":"10.20.0.50/24","members":["edge-02","edge-01"]}`)
	g.do(t, "", "POST", "/v1/apps", op, `{"name":"historian","group":"press","image":"historian:2","witness":"edge-03"}`)
	g.do(t, "app_show", "GET", "/v1/apps/plc-bridge", reader, "")
	g.do(t, "app_list", "GET", "/v1/apps", reader, "")
	// What the members' agents report: edge-02 took over from edge-01, which stands by again.
	if err := g.st.Store.Write(context.Background(), func(tx store.Tx) error {
		ids := map[string]int64{}
		for _, name := range []string{"edge-01", "edge-02"} {
			h, err := tx.HostByHostname(name)
			if err != nil {
				return err
			}
			ids[name] = h.ID
			if err := tx.SetHostState(h.ID, "available", "enabled", g.clock.Now()); err != nil {
				return err
			}
		}
		a, err := tx.AppByName("plc-bridge")
		if err != nil {
			return err
		}
		if _, err := tx.SetAppActive(a.ID, ids["edge-01"], 7); err != nil {
			return err
		}
		if _, err := tx.SetAppLastSwitch(a.ID, store.AppSwitch{Epoch: 7, At: g.clock.Now(), FromHostID: ids["edge-02"],
			ToHostID: ids["edge-01"], DurationMillis: 312, Reason: "failure"}); err != nil {
			return err
		}
		for name, role := range map[string]string{"edge-01": "active", "edge-02": "standby"} {
			if err := tx.SetAppMemberStatus(a.ID, store.AppMemberStatus{HostID: ids[name], Role: role, Healthy: true, ReportedAt: g.clock.Now()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g.do(t, "app_switchover", "POST", "/v1/apps/plc-bridge/switchover", op, `{"to":"edge-02"}`)
	g.do(t, "error_app_switchover_active", "POST", "/v1/apps/plc-bridge/switchover", op, `{"to":"edge-01"}`)
	g.do(t, "error_app_member", "POST", "/v1/apps", op, `{"name":"hmi","group":"press","image":"hmi:1","members":["edge-01","edge-03"]}`)
	g.do(t, "error_app_group_delete", "DELETE", "/v1/groups/press", op, "")
	g.do(t, "", "DELETE", "/v1/apps/historian", op, "")
	g.do(t, "event_list_apps", "GET", "/v1/events?entity_type=app", reader, "")
}
