package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/client"
)

func labelsView(labels map[string]string) view {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := view{raw: labels, list: true, names: []string{"key", "value"}}
	if v.raw == nil {
		v.raw = map[string]string{}
	}
	for _, k := range keys {
		v.rows = append(v.rows, []field{{"key", k}, {"value", labels[k]}})
	}
	return v
}

func (a *app) labelCommands() []*cobra.Command {
	assign := &cobra.Command{
		Use:               "host-label-assign HOST key=value [key=value ...]",
		Short:             "Set labels on a host (Kubernetes label syntax), keeping its others",
		Example:           "  hbctl host-label-assign edge-01 zone=north example.com/line=3",
		ValidArgsFunction: a.completeHosts,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) < 2 {
				return &usageError{fmt.Errorf("host-label-assign takes HOST and at least one key=value")}
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			labels, err := parseLabels(args[1:])
			if err != nil {
				return err
			}
			out, err := c.AssignLabels(ctx, args[0], labels)
			if err != nil {
				return err
			}
			return a.show(labelsView(out))
		}),
	}
	list := &cobra.Command{
		Use:               "host-label-list HOST",
		Short:             "List a host's labels",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			labels, err := c.HostLabels(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(labelsView(labels))
		}),
	}
	remove := &cobra.Command{
		Use:               "host-label-remove HOST key [key ...]",
		Short:             "Remove labels from a host by key (all of them, or none if one is missing)",
		ValidArgsFunction: a.completeHosts,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) < 2 {
				return &usageError{fmt.Errorf("host-label-remove takes HOST and at least one key")}
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			out, err := c.RemoveLabels(ctx, args[0], args[1:])
			if err != nil {
				return err
			}
			return a.show(labelsView(out))
		}),
	}
	return []*cobra.Command{assign, list, remove}
}
