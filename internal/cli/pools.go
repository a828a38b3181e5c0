package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
)

func poolFields(p apitype.Pool) []field {
	ranges := strings.Join(p.Ranges, ",")
	if ranges == "" {
		ranges = "(the whole network)"
	}
	return []field{
		{"name", p.Name}, {"role", p.Role}, {"mode", p.Mode}, {"network", p.Network},
		{"ranges", ranges}, {"gateway", p.Gateway}, {"dns", strings.Join(p.DNS, ",")},
		{"ntp", strings.Join(p.NTP, ",")}, {"reserved", strings.Join(p.Reserved, ",")},
		{"lease", (time.Duration(p.LeaseSeconds) * time.Second).String()},
		{"used", strconv.Itoa(p.Used)}, {"uuid", p.UUID},
		{"created_at", timeText(p.CreatedAt)}, {"updated_at", timeText(p.UpdatedAt)},
	}
}

var poolListColumns = []string{"name", "role", "mode", "network", "ranges", "gateway", "used"}

func (a *app) poolCommands() []*cobra.Command {
	return []*cobra.Command{a.poolAdd(), a.poolList(), a.poolShow(), a.poolDelete()}
}

func (a *app) poolAdd() *cobra.Command {
	var (
		req   apitype.PoolCreate
		lease time.Duration
	)
	cmd := &cobra.Command{
		Use:   "addrpool-add NAME --network CIDR --mode static|dynamic [flags]",
		Short: "Add an address pool for a routed edge subnet",
		Example: `  hbctl addrpool-add site-a --network 10.20.0.0/24 --mode dynamic \
      --ranges 10.20.0.100-10.20.0.199 --gateway 10.20.0.1 --dns 10.20.0.1 --ntp 10.20.0.1`,
		Args: a.args("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			if lease > 0 {
				req.LeaseSeconds = int64(lease / time.Second)
			}
			p, err := c.AddPool(ctx, req)
			if err != nil {
				return err
			}
			return a.show(view{raw: p, rows: [][]field{poolFields(p)}})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Network, "network", "", "the subnet, like 10.20.0.0/24")
	f.StringVar(&req.Mode, "mode", "", "static (operators give addresses) or dynamic (the controller allocates and serves them by DHCP)")
	f.StringSliceVar(&req.Ranges, "ranges", nil, "first-last ranges dynamic addresses come from (default: the whole network)")
	f.StringVar(&req.Gateway, "gateway", "", "router given to DHCP clients")
	f.StringSliceVar(&req.DNS, "dns", nil, "DNS servers given to DHCP clients")
	f.StringSliceVar(&req.NTP, "ntp", nil, "NTP servers given to DHCP clients")
	f.StringSliceVar(&req.Reserved, "reserved", nil, "addresses no host may take")
	f.DurationVar(&lease, "lease-time", 0, "DHCP lease time (default 24h)")
	required(cmd, "network", "mode")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{apitype.PoolStatic, apitype.PoolDynamic}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) poolList() *cobra.Command {
	return &cobra.Command{
		Use:   "addrpool-list",
		Short: "List address pools",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			pools, err := c.ListPools(ctx)
			if err != nil {
				return err
			}
			if pools == nil {
				pools = []apitype.Pool{}
			}
			v := view{raw: pools, list: true, names: poolListColumns}
			for _, p := range pools {
				v.rows = append(v.rows, poolFields(p))
			}
			return a.show(v)
		}),
	}
}

func (a *app) completePools(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
		pools, err := c.ListPools(ctx)
		names := make([]string, len(pools))
		for i, p := range pools {
			names[i] = p.Name
		}
		return names, err
	})(cmd, args, toComplete)
}

func (a *app) poolShow() *cobra.Command {
	return &cobra.Command{
		Use:               "addrpool-show NAME",
		Short:             "Show an address pool",
		Args:              a.args("NAME"),
		ValidArgsFunction: a.completePools,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			p, err := c.GetPool(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: p, rows: [][]field{poolFields(p)}})
		}),
	}
}

func (a *app) poolDelete() *cobra.Command {
	return a.deleteCommand("addrpool-delete NAME", "Delete an address pool no host uses", "address pool %s",
		a.completePools, func(ctx context.Context, c *client.Client, name string) error { return c.DeletePool(ctx, name) })
}
