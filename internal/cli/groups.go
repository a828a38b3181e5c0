package cli

import (
	"context"
	"fmt"
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
		{"name", g.Name}, {"description", g.Description}, {"labels", labelsText(g.Labels)},
		{"members", strconv.Itoa(len(g.Members))}, {"hosts", strings.Join(members, ", ")}, {"created_at", timeText(g.CreatedAt)},
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
			names := []string{"name", "description", "labels", "members"}
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
	return append([]*cobra.Command{add, list, show, del}, a.groupLabelCommands(complete)...)
}

// groupLabelCommands are the label commands of a group: labels it gives every member's Node,
// beside each host's own.
func (a *app) groupLabelCommands(complete cobra.CompletionFunc) []*cobra.Command {
	assign := &cobra.Command{
		Use:               "group-label-assign GROUP key=value [key=value ...]",
		Short:             "Set labels on a group (Kubernetes label syntax), keeping its others",
		Example:           "  hbctl group-label-assign press-line line=3 example.com/hall=2",
		ValidArgsFunction: complete,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) < 2 {
				return &usageError{fmt.Errorf("group-label-assign takes GROUP and at least one key=value")}
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			labels, err := parseLabels(args[1:])
			if err != nil {
				return err
			}
			out, err := c.AssignGroupLabels(ctx, args[0], labels)
			if err != nil {
				return err
			}
			return a.show(labelsView(out))
		}),
	}
	list := &cobra.Command{
		Use:               "group-label-list GROUP",
		Short:             "List a group's labels",
		Args:              a.args("GROUP"),
		ValidArgsFunction: complete,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			labels, err := c.GroupLabels(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(labelsView(labels))
		}),
	}
	remove := &cobra.Command{
		Use:               "group-label-remove GROUP key [key ...]",
		Short:             "Remove labels from a group by key (all of them, or none if one is missing)",
		ValidArgsFunction: complete,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) < 2 {
				return &usageError{fmt.Errorf("group-label-remove takes GROUP and at least one key")}
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			out, err := c.RemoveGroupLabels(ctx, args[0], args[1:])
			if err != nil {
				return err
			}
			return a.show(labelsView(out))
		}),
	}
	return []*cobra.Command{assign, list, remove}
}
