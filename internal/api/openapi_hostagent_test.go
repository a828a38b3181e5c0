package api_test

import (
	"context"
	"encoding/json"
	"path"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/store"
)

// TestSpecHostAgentShapes holds the HostAgent schema to its Go type, and its states to the
// code's.
func TestSpecHostAgentShapes(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	ref := doc.Components.Schemas["HostAgent"]
	if ref == nil {
		t.Fatal("components.schemas has no HostAgent")
	}
	specCheckShape(t, "HostAgent", ref.Value, reflect.TypeOf(apitype.HostAgent{}))
	var states []string
	for _, v := range ref.Value.Properties["agent"].Value.Enum {
		states = append(states, v.(string))
	}
	if diff := cmp.Diff([]string{apitype.AgentNone, apitype.AgentEnrolled, apitype.AgentRevoked}, states); diff != "" {
		t.Errorf("HostAgent.agent: enum in the spec (+) differs from the code's (-):\n%s", diff)
	}
}

// specHostAgentCases resets and revokes hosts' agents. The agent's side (its calls refused,
// enrolling again) is tested over TLS in agent_enroll_test.go.
func specHostAgentCases(t *testing.T, sh *specHarness) {
	t.Helper()
	srv := sh.specServerStart(t)
	h, admin, operator := srv.h, srv.admin, srv.operator
	refused := func(tc specCase, want string) { t.Helper(); sh.specRefused(t, h, tc, want) }
	sh.do(t, h, specCase{name: "add host with an agent", method: "POST", path: "/v1/hosts", token: admin, want: 201,
		body: `{"hostname":"edge-a1","personality":"edgeworker","mgmt_ip":"192.168.204.70"}`})
	enroll := func() {
		t.Helper()
		if err := srv.c.Store.Write(context.Background(), func(tx store.Tx) error {
			host, err := tx.HostByHostname("edge-a1")
			if err != nil {
				return err
			}
			return tx.SetHostAgent(host.ID, "1f")
		}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(body []byte, want string) {
		t.Helper()
		var ha apitype.HostAgent
		if err := json.Unmarshal(body, &ha); err != nil || ha.Host != "edge-a1" || ha.Agent != want || ha.Message == "" {
			t.Errorf("answer %s (%v); want edge-a1's agent %s, with a message", body, err, want)
		}
	}
	enroll()
	for _, p := range []string{"/v1/hosts/edge-a1/agent/reset", "/v1/hosts/edge-a1/agent/revoke"} {
		refused(specCase{name: "by an operator", method: "POST", path: p, token: operator, want: 403}, "admin")
		sh.do(t, h, specCase{name: "with an unknown token", method: "POST", path: p, token: "hb_aaaaaaaa.bbbbbbbb", want: 401})
		refused(specCase{name: "unknown host", method: "POST", path: "/v1/hosts/edge-zz/agent/" + path.Base(p), token: admin, want: 404}, "edge-zz")
	}
	check(sh.do(t, h, specCase{name: "revoke", method: "POST", path: "/v1/hosts/edge-a1/agent/revoke", token: admin, want: 200}), apitype.AgentRevoked)
	check(sh.do(t, h, specCase{name: "reset", method: "POST", path: "/v1/hosts/edge-a1/agent/reset", token: admin, want: 200}), apitype.AgentNone)
	refused(specCase{name: "revoke without an agent", method: "POST", path: "/v1/hosts/edge-a1/agent/revoke", token: admin, want: 409}, "no agent to revoke")
}

// TestGoldenHostAgent records host-agent-revoke and host-agent-reset, and the events they log.
func TestGoldenHostAgent(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	g.do(t, "", "POST", "/v1/hosts", g.admin, `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.10"}`)
	if err := g.st.Write(context.Background(), func(tx store.Tx) error {
		h, err := tx.HostByHostname("edge-01")
		if err != nil {
			return err
		}
		return tx.SetHostAgent(h.ID, "5e1f")
	}); err != nil {
		t.Fatal(err)
	}
	g.do(t, "host_agent_revoke", "POST", "/v1/hosts/edge-01/agent/revoke", g.admin, "")
	g.do(t, "host_agent_reset", "POST", "/v1/hosts/edge-01/agent/reset", g.admin, "")
	g.do(t, "error_host_agent_revoke_none", "POST", "/v1/hosts/edge-01/agent/revoke", g.admin, "")
	g.do(t, "event_list_host_agent", "GET", "/v1/events?entity_type=host&entity_id=host%3Dedge-01&limit=2", g.admin, "")
}
