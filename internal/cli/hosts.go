package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/wire"
)

var hostListColumns = []string{"id", "hostname", "personality", "administrative", "operational", "availability"}

func labelsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// hostFields are a host's fields in host-show order.
func hostFields(h apitype.Host) []field {
	return []field{
		{"id", strconv.FormatInt(h.ID, 10)}, {"uuid", h.UUID}, {"hostname", h.Hostname},
		{"personality", h.Personality}, {"administrative", h.Administrative},
		{"operational", h.Operational}, {"availability", h.Availability},
		{"invprovision", h.InvProvision}, {"mgmt_mac", h.MgmtMAC}, {"mgmt_ip", h.MgmtIP}, {"pool", h.Pool},
		{"group", h.Group}, {"labels", labelsText(h.Labels)}, {"location", h.Location},
		{"bm_type", h.BMType}, {"bm_ip", h.BMIP}, {"bm_username", h.BMUsername},
		{"ssh_user", h.SSHUser}, {"ssh_key", h.SSHKey},
		{"node_state", nodeText(h)}, {"node_reason", h.NodeReason}, {"kubelet_version", h.KubeletVersion},
		{"created_at", timeText(h.CreatedAt)}, {"updated_at", timeText(h.UpdatedAt)},
	}
}

// nodeText is the Node's state, with the reason when it is not Ready.
func nodeText(h apitype.Host) string {
	if h.NodeReason != "" {
		return h.NodeState + " (" + h.NodeReason + ")"
	}
	return h.NodeState
}

func hostView(h apitype.Host) view { return view{raw: h, rows: [][]field{hostFields(h)}} }

func (a *app) hostCommands() []*cobra.Command {
	return []*cobra.Command{a.hostAdd(), a.hostList(), a.hostShow(), a.hostUpdate(), a.hostDelete(), a.hostUpgrade()}
}

// completer offers the names list returns for a command's one argument.
func (a *app) completer(list func(ctx context.Context, c *client.Client) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 || a.load(cmd, args) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		names, err := list(cmd.Context(), c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeHosts offers hostnames for a HOST argument.
func (a *app) completeHosts(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
		hosts, err := c.ListHosts(ctx, client.HostFilter{})
		names := make([]string, len(hosts))
		for i, h := range hosts {
			names[i] = h.Hostname
		}
		return names, err
	})(cmd, args, toComplete)
}

func (a *app) hostAdd() *cobra.Command {
	var (
		req    apitype.HostCreate
		labels []string
	)
	cmd := &cobra.Command{
		Use:   "host-add -n HOSTNAME -p PERSONALITY [flags]",
		Short: "Add a host to the inventory",
		Example: `  hbctl host-add -n edge-01 -p edgeworker -m 52:54:00:12:34:56 -i 192.168.204.10 -l line-3
  hbctl host-add -n edge-02 -p edgeworker --group press --label zone=north`,
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			var err error
			if req.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			h, err := c.AddHost(ctx, req)
			if err != nil {
				return err
			}
			return a.show(hostView(h))
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&req.Hostname, "hostname", "n", "", "hostname (RFC 1123: lowercase letters, digits, '-')")
	f.StringVarP(&req.Personality, "personality", "p", "", "one of "+strings.Join(apitype.Personalities, ", "))
	f.StringVarP(&req.MgmtMAC, "mgmt-mac", "m", "", "MAC of the management interface")
	f.StringVarP(&req.MgmtIP, "mgmt-ip", "i", "", "management address (required on a static pool; pins one on a dynamic pool)")
	f.StringVar(&req.Pool, "pool", "", "address pool of the host (default: the management pool)")
	f.StringVarP(&req.Location, "location", "l", "", "where the host is")
	f.StringVar(&req.Group, "group", "", "group (federation) of the host")
	f.StringArrayVar(&labels, "label", nil, "label key=value (repeat)")
	f.StringVarP(&req.BMType, "bm-type", "T", "", "board management type (not for edgeworkers)")
	f.StringVarP(&req.BMIP, "bm-ip", "I", "", "board management address (not for edgeworkers)")
	f.StringVarP(&req.BMUsername, "bm-username", "U", "", "board management user (not for edgeworkers)")
	f.StringVar(&req.SSHUser, "ssh-user", "", "user the controller logs in as over SSH to provision the host (default: root)")
	f.StringVar(&req.SSHKey, "ssh-key", "", "name (not path) of a private key in the controller's SSH key directory (default: the key named default)")
	required(cmd, "hostname", "personality")
	_ = cmd.RegisterFlagCompletionFunc("personality", cobra.FixedCompletions(apitype.Personalities, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &usageError{fmt.Errorf("--label %q: write key=value", kv)}
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) hostList() *cobra.Command {
	var f client.HostFilter
	cmd := &cobra.Command{
		Use:   "host-list [flags]",
		Short: "List hosts",
		Example: `  hbctl host-list
  hbctl host-list --personality edgeworker --availability failed
  hbctl host-list --label zone=north -c hostname -c availability -f value`,
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			hosts, err := c.ListHosts(ctx, f)
			if err != nil {
				return err
			}
			if hosts == nil {
				hosts = []apitype.Host{} // [] in JSON, not null
			}
			v := view{raw: hosts, list: true, names: hostListColumns}
			for _, h := range hosts {
				v.rows = append(v.rows, hostFields(h))
			}
			return a.show(v)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Personality, "personality", "", "only hosts with this personality")
	fl.StringVar(&f.Availability, "availability", "", "only hosts with this availability")
	fl.StringVar(&f.Administrative, "administrative", "", "only locked or unlocked hosts")
	fl.StringVar(&f.Operational, "operational", "", "only enabled or disabled hosts")
	fl.StringVar(&f.InvProvision, "invprovision", "", "only hosts in this provisioning state")
	fl.StringVar(&f.Group, "group", "", "only hosts of this group")
	fl.StringArrayVar(&f.Labels, "label", nil, "only hosts with this label: key or key=value (repeat: all must match)")
	fl.IntVar(&f.PageSize, "page-size", 0, "hosts fetched per request (default: the controller's)")
	for name, vals := range apitype.HostEnums {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
	}
	return cmd
}

func (a *app) hostShow() *cobra.Command {
	return &cobra.Command{
		Use:               "host-show HOST",
		Short:             "Show a host (by id, uuid or hostname)",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			h, err := c.GetHost(ctx, args[0])
			if err != nil {
				return err
			}
			v := hostView(h)
			// For people, a summary of what the agent reported, when it has.
			if a.g.format == "table" || a.g.format == "value" {
				hi, err := c.HostInventory(ctx, h.Hostname)
				switch {
				case err == nil:
					v.rows[0] = append(v.rows[0], inventorySummary(hi.Inventory)...)
				case !problem.Is(err, problem.NotFound):
					return err
				}
			}
			return a.show(v)
		}),
	}
}

// inventorySummary is host-show's short account of a host's hardware.
func inventorySummary(inv wire.Inventory) []field {
	var cores, threads int
	model := ""
	for _, c := range inv.CPUs {
		cores += c.Cores
		threads += c.Threads
		model = c.Model
	}
	var disk uint64
	for _, d := range inv.Disks {
		disk += d.SizeBytes
	}
	return []field{
		{"os", inv.OS.PrettyName}, {"kernel", inv.Kernel},
		{"cpus", fmt.Sprintf("%d socket(s), %d cores, %d threads: %s", len(inv.CPUs), cores, threads, model)},
		{"memory", bytesText(inv.Memory.TotalBytes)},
		{"disks", fmt.Sprintf("%d, %s", len(inv.Disks), bytesText(disk))},
		{"containerd", inv.Containerd}, {"kubelet", inv.Kubelet},
		{"inventory_at", timeText(inv.CollectedAt)},
	}
}

// updatable lists the keys host-update takes, as the API names them.
var updatable = []string{"hostname", "personality", "mgmt_mac", "mgmt_ip", "pool", "location", "group", "bm_type", "bm_ip", "bm_username", "ssh_user", "ssh_key"}

func (a *app) hostUpdate() *cobra.Command {
	return &cobra.Command{
		Use:   "host-update HOST key=value [key=value ...]",
		Short: "Change fields of a host (an empty value clears a field)",
		Long: "Change fields of a host. Keys: " + strings.Join(updatable, ", ") + ".\n" +
			"An empty value (location=) clears an optional field.",
		Example: `  hbctl host-update edge-01 personality=edgeworker location=line-3
  hbctl host-update 7 hostname=edge-07 mgmt_mac=52:54:00:12:34:57`,
		ValidArgsFunction: a.completeHosts,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) < 2 {
				return &usageError{fmt.Errorf("host-update takes HOST and at least one key=value; see hbctl host-update --help")}
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			patch := map[string]any{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &usageError{fmt.Errorf("%q: write key=value with a key from: %s", kv, strings.Join(updatable, ", "))}
				}
				patch[k] = v
			}
			h, err := c.UpdateHost(ctx, args[0], patch)
			if err != nil {
				return err
			}
			return a.show(hostView(h))
		}),
	}
}

func (a *app) hostDelete() *cobra.Command {
	return a.deleteCommand("host-delete HOST", "Delete a host from the inventory", "host %s from the inventory",
		a.completeHosts, func(ctx context.Context, c *client.Client, ref string) error { return c.DeleteHost(ctx, ref) })
}

// deleteCommand is a command that deletes one named object after asking
// (or with --yes); what names the object in the question and the report.
func (a *app) deleteCommand(use, short, what string, complete cobra.CompletionFunc,
	del func(ctx context.Context, c *client.Client, name string) error) *cobra.Command {
	var yes bool
	arg := strings.Fields(use)[1]
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              a.args(arg),
		ValidArgsFunction: complete,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if !yes {
				ok, err := a.confirm("Delete " + fmt.Sprintf(what, args[0]) + "?")
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(a.io.Err, "Not deleted.")
					return nil
				}
			}
			if err := del(ctx, c, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "Deleted %s.\n", fmt.Sprintf(what, args[0]))
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (a *app) hostUpgrade() *cobra.Command {
	return &cobra.Command{
		Use:               "host-upgrade HOST",
		Short:             "Upgrade a host's software (refused for edgeworkers: their owners upgrade the OS)",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			return c.UpgradeHost(ctx, args[0])
		}),
	}
}
