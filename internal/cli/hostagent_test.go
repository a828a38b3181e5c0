package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/store"
)

// TestHostAgentCommands revokes and resets a host's agent with hbctl: each answers the host's
// agent as it left it and logs an event; revoking a host without an agent is refused, and an
// operator may do neither.
func TestHostAgentCommands(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	// The host's agent has joined: the serial of its certificate is stored.
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		host, err := tx.HostByHostname("edge-01")
		if err != nil {
			return err
		}
		return tx.SetHostAgent(host.ID, "1f")
	}); err != nil {
		t.Fatal(err)
	}
	op := &hbctl{t: t, env: map[string]string{}}
	for k, v := range h.env {
		op.env[k] = v
	}
	op.env["HB_TOKEN"] = strings.TrimSpace(h.ok("token-create", "--role", "operator", "-c", "token", "-f", "value"))
	for _, cmd := range []string{"host-agent-revoke", "host-agent-reset"} {
		if code, _, errs := op.run("", cmd, "edge-01"); code != 1 || !strings.Contains(errs, "admin") {
			t.Errorf("%s by an operator: exit %d: %q", cmd, code, errs)
		}
	}
	var ha apitype.HostAgent
	if err := json.Unmarshal([]byte(h.ok("host-agent-revoke", "edge-01", "-f", "json")), &ha); err != nil || ha.Agent != apitype.AgentRevoked || ha.Host != "edge-01" {
		t.Errorf("host-agent-revoke: %+v (%v)", ha, err)
	}
	if out := h.ok("host-agent-reset", "edge-01", "-c", "agent", "-f", "value"); out != "none\n" {
		t.Errorf("host-agent-reset: %q", out)
	}
	if code, _, errs := h.run("", "host-agent-revoke", "edge-01"); code != 1 || !strings.Contains(errs, "no agent to revoke") {
		t.Errorf("host-agent-revoke without an agent: exit %d: %q", code, errs)
	}
	if out := h.ok("event-list", "--host", "edge-01", "-c", "action", "-f", "value"); !strings.Contains(out, "host.agent.revoke") || !strings.Contains(out, "host.agent.reset") {
		t.Errorf("event-list after revoke and reset: %q", out)
	}
}
