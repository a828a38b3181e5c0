package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
)

// appFields are an app's fields; active and epoch stay empty until the
// group's agents run the failover.
func appFields(ap apitype.App) []field {
	var members []string
	for _, m := range ap.Members {
		members = append(members, m.Hostname+" ("+m.Availability+")")
	}
	port := ""
	if ap.Port != 0 {
		port = strconv.Itoa(ap.Port)
	}
	epoch := ""
	if ap.Epoch != 0 {
		epoch = strconv.FormatInt(ap.Epoch, 10)
	}
	return []field{
		{"name", ap.Name}, {"group", ap.Group}, {"image", ap.Image}, {"port", port}, {"vip", ap.VIP},
		{"members", strings.Join(members, ", ")}, {"active", ap.Active}, {"epoch", epoch},
		{"uuid", ap.UUID}, {"created_at", timeText(ap.CreatedAt)},
	}
}

func (a *app) appCommands() []*cobra.Command {
	var req apitype.AppCreate
	add := &cobra.Command{
		Use:   "app-add NAME --group GROUP --image IMAGE [--port PORT] [--vip ADDR/PREFIX] [--members HOST,...]",
		Short: "Add a redundant app that runs on edgeworkers of a group",
		Long: `Add a redundant app: it runs on the members named, in order of preference,
or on every edgeworker of the group; at least two.`,
		Example: "  hbctl app-add plc-bridge --group press --image registry.example/plc-bridge:1.4 --port 502 --vip 10.20.0.50/24\n" +
			"  hbctl app-add historian --group press --image historian:2 --members edge-02,edge-01",
		Args: a.args("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			ap, err := c.AddApp(ctx, req)
			if err != nil {
				return err
			}
			return a.show(view{raw: ap, rows: [][]field{appFields(ap)}})
		}),
	}
	f := add.Flags()
	f.StringVar(&req.Group, "group", "", "the group whose edgeworkers run the app")
	f.StringVar(&req.Image, "image", "", "container image: [registry[:port]/]path[:tag][@sha256:digest]")
	f.IntVar(&req.Port, "port", 0, "port the app serves (default: none)")
	f.StringVar(&req.VIP, "vip", "", "virtual address the active member holds, with its prefix length, like 10.20.0.50/24 (default: none)")
	f.StringSliceVar(&req.Members, "members", nil, "edgeworkers of the group to run on, in order of preference (default: all of them)")
	required(add, "group", "image")
	_ = add.RegisterFlagCompletionFunc("group", a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
		groups, err := c.ListGroups(ctx)
		names := make([]string, len(groups))
		for i, g := range groups {
			names[i] = g.Name
		}
		return names, err
	}))
	list := &cobra.Command{
		Use:   "app-list",
		Short: "List apps and their members",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			apps, err := c.ListApps(ctx)
			if err != nil {
				return err
			}
			if apps == nil {
				apps = []apitype.App{}
			}
			v := view{raw: apps, list: true, names: []string{"name", "group", "image", "vip", "members", "active"}}
			for _, ap := range apps {
				v.rows = append(v.rows, appFields(ap))
			}
			return a.show(v)
		}),
	}
	complete := a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
		apps, err := c.ListApps(ctx)
		names := make([]string, len(apps))
		for i, ap := range apps {
			names[i] = ap.Name
		}
		return names, err
	})
	show := &cobra.Command{
		Use:               "app-show NAME",
		Short:             "Show an app, its members in order of preference and their availability",
		Args:              a.args("NAME"),
		ValidArgsFunction: complete,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			ap, err := c.GetApp(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: ap, rows: [][]field{appFields(ap)}})
		}),
	}
	del := a.deleteCommand("app-delete NAME", "Delete an app (its members stay in the inventory)", "app %s", complete,
		func(ctx context.Context, c *client.Client, name string) error { return c.DeleteApp(ctx, name) })
	return []*cobra.Command{add, list, show, del}
}
