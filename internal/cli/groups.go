package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
)

func groupFields(g apitype.Group) []field {
	var members []string
	for _, m := range g.Members {
		members = append(members, m.Hostname+" ("+m.Availability+")")
	}
	return []field{
		{"name", g.Name}, {"description", g.Description}, {"members", strconv.Itoa(len(g.Members))},
		{"hosts", strings.Join(members, ", ")}, {"created_at", timeText(g.CreatedAt)},
	}
}

func (a *app) groupCommands() []*cobra.Command {
	var description string
	add := &cobra.Command{
		Use:     "group-add NAME [--description TEXT]",
		Short:   "Add a group (federation) of hosts",
		Example: "  hbctl group-add press-line --description 'the presses of hall 2'\n  hbctl host-update edge-01 group=press-line",
		Args:    a.args("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			g, err := c.AddGroup(ctx, apitype.GroupCreate{Name: args[0], Description: description})
			if err != nil {
				return err
			}
			return a.show(view{raw: g, rows: [][]field{groupFields(g)}})
		}),
	}
	add.Flags().StringVar(&description, "description", "", "what the group is for")
	list := &cobra.Command{
		Use:   "group-list",
		Short: "List groups and their members",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			groups, err := c.ListGroups(ctx)
			if err != nil {
				return err
			}
			if groups == nil {
				groups = []apitype.Group{}
			}
			names := []string{"name", "description", "members"}
			v := view{raw: groups, list: true, names: names}
			for _, g := range groups {
				v.rows = append(v.rows, groupFields(g))
			}
			return a.show(v)
		}),
	}
	complete := a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
		groups, err := c.ListGroups(ctx)
		names := make([]string, len(groups))
		for i, g := range groups {
			names[i] = g.Name
		}
		return names, err
	})
	show := &cobra.Command{
		Use:               "group-show NAME",
		Short:             "Show a group, its members and their availability",
		Args:              a.args("NAME"),
		ValidArgsFunction: complete,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			g, err := c.GetGroup(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: g, rows: [][]field{groupFields(g)}})
		}),
	}
	del := a.deleteCommand("group-delete NAME", "Delete a group without members", "group %s", complete,
		func(ctx context.Context, c *client.Client, name string) error { return c.DeleteGroup(ctx, name) })
	return []*cobra.Command{add, list, show, del}
}
