package api_test

import "testing"

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
	g.do(t, "", "POST", "/v1/apps", op, `{"name":"historian","group":"press","image":"historian:2"}`)
	g.do(t, "app_show", "GET", "/v1/apps/plc-bridge", reader, "")
	g.do(t, "app_list", "GET", "/v1/apps", reader, "")
	g.do(t, "error_app_member", "POST", "/v1/apps", op, `{"name":"hmi","group":"press","image":"hmi:1","members":["edge-01","edge-03"]}`)
	g.do(t, "error_app_group_delete", "DELETE", "/v1/groups/press", op, "")
	g.do(t, "", "DELETE", "/v1/apps/historian", op, "")
	g.do(t, "event_list_apps", "GET", "/v1/events?entity_type=app", reader, "")
}
