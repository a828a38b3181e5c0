package cli

import (
	"context"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
)

func hostAgentFields(h apitype.HostAgent) []field {
	return []field{{"host", h.Host}, {"host_uuid", h.HostUUID}, {"agent", h.Agent}, {"message", h.Message}}
}

func (a *app) hostAgentCommands() []*cobra.Command {
	reset := &cobra.Command{
		Use:   "host-agent-reset HOST",
		Short: "Clear a host's agent, so that any enroll token may enroll it again",
		Long: `host-agent-reset clears the host's agent: the certificate it holds is refused from its next
call, and the host may enroll again with any enroll token, as a host that never had an agent.
Without it, a host whose agent has joined is enrolled again only with a token bound to it
(hbctl token-create --type enroll --host HOST): a node cannot take an enrolled host's identity
by calling itself by the host's name. The controller logs a host.agent.reset event. Role admin.`,
		Example:           "  hbctl host-agent-reset edge-01",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			h, err := c.ResetHostAgent(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: h, rows: [][]field{hostAgentFields(h)}})
		}),
	}
	revoke := &cobra.Command{
		Use:   "host-agent-revoke HOST",
		Short: "Revoke a host's agent certificate at once",
		Long: `host-agent-revoke revokes the certificate of the host's agent: its next call is refused
(403). The host is enrolled again only with a new enroll token bound to it
(hbctl token-create --type enroll --host HOST, then hb-agent join on the node). The controller
logs a host.agent.revoke event. Role admin.`,
		Example:           "  hbctl host-agent-revoke edge-01\n  hbctl token-create --type enroll --host edge-01 --uses 1 --ttl 1h",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			h, err := c.RevokeHostAgent(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: h, rows: [][]field{hostAgentFields(h)}})
		}),
	}
	return []*cobra.Command{reset, revoke}
}
