package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/version"
)

func tokenFields(t apitype.Token) []field {
	exp := "never"
	if t.ExpiresAt != nil {
		exp = timeText(*t.ExpiresAt)
	}
	uses := strconv.FormatInt(t.Uses, 10)
	if t.MaxUses > 0 {
		uses += "/" + strconv.FormatInt(t.MaxUses, 10)
	}
	return []field{
		{"id", t.ID}, {"type", t.Type}, {"role", t.Role}, {"host", t.Host}, {"uses", uses}, {"description", t.Description},
		{"created_by", t.CreatedBy}, {"created_at", timeText(t.CreatedAt)}, {"expires_at", exp},
	}
}

func (a *app) adminCommands() []*cobra.Command {
	return append([]*cobra.Command{a.tokenCreate(), a.tokenList(), a.tokenDelete(), a.eventList()}, a.hostAgentCommands()...)
}

func (a *app) tokenCreate() *cobra.Command {
	var req apitype.TokenCreate
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token-create --role ROLE | --type enroll [flags]",
		Short: "Make an API or enroll token (its secret is shown once)",
		Example: `  hbctl token-create --role reader --description grafana --ttl 720h
  hbctl token-create --type enroll --host edge-01 --uses 1 --ttl 2h`,
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			t, err := c.CreateToken(ctx, req)
			if err != nil {
				return err
			}
			fields := append([]field{{"token", t.Secret}}, tokenFields(t.Token)...)
			if a.g.format == "table" {
				fmt.Fprintln(a.io.Err, "Keep the token now: the controller stores only its hash and cannot show it again.")
			}
			return a.show(view{raw: t, rows: [][]field{fields}})
		}),
	}
	cmd.Flags().StringVar(&req.Type, "type", "api", "api (a bearer token with a role) or enroll (lets hb-agent join a node)")
	cmd.Flags().StringVar(&req.Role, "role", "", "api tokens: one of "+strings.Join(apitype.Roles, ", "))
	cmd.Flags().Int64Var(&req.Uses, "uses", 0, "enroll tokens: how many joins (default: no limit)")
	cmd.Flags().StringVar(&req.Host, "host", "", "enroll tokens: the only host it admits (without it, only hosts with no agent yet; see host-agent-reset)")
	cmd.Flags().StringVar(&req.Description, "description", "", "what the token is for")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, like 24h (default: no expiry)")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(apitype.Roles, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) tokenList() *cobra.Command {
	return &cobra.Command{
		Use:   "token-list",
		Short: "List API and enroll tokens (never their secrets)",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			toks, err := c.ListTokens(ctx)
			if err != nil {
				return err
			}
			if toks == nil {
				toks = []apitype.Token{}
			}
			v := view{raw: toks, list: true, names: []string{"id", "type", "role", "host", "uses", "description", "created_by", "created_at", "expires_at"}}
			for _, t := range toks {
				v.rows = append(v.rows, tokenFields(t))
			}
			return a.show(v)
		}),
	}
}

func (a *app) tokenDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "token-delete ID",
		Short: "Revoke a token at once",
		Args:  a.args("ID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if err := c.DeleteToken(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "Deleted token %s.\n", args[0])
			return nil
		}),
	}
}

func (a *app) eventList() *cobra.Command {
	var f client.EventFilter
	var host string
	cmd := &cobra.Command{
		Use:   "event-list [flags]",
		Short: "Show the event log, newest first",
		Long: `Show a page of the event log, newest first: the last 100 events, or
--limit of them. The marker of the next, older page goes to standard
error; --marker shows that page.`,
		Example: `  hbctl event-list
  hbctl event-list --host edge-01 --limit 20
  hbctl event-list --limit 1000 --marker 4711`,
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if host != "" {
				f.EntityType, f.EntityID = "host", "host="+host
			}
			page, err := c.EventPage(ctx, f)
			if err != nil {
				return err
			}
			evs := page.Events
			if evs == nil {
				evs = []apitype.Event{}
			}
			v := view{raw: evs, list: true, names: []string{"id", "time", "code", "entity", "action", "actor", "reason"}}
			for _, e := range evs {
				v.rows = append(v.rows, []field{
					{"id", strconv.FormatInt(e.ID, 10)}, {"time", timeText(e.Time)}, {"code", e.Code},
					{"entity", e.EntityID}, {"action", e.Action}, {"actor", e.Actor}, {"reason", e.Reason},
				})
			}
			if err := a.show(v); err != nil {
				return err
			}
			a.nextPage("events", page.Next)
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&host, "host", "", "only events of this hostname")
	fl.StringVar(&f.EntityType, "entity-type", "", "only events of this entity type (host, token)")
	fl.StringVar(&f.EntityID, "entity", "", "only events of this entity, like host=edge-01")
	fl.StringVar(&f.Action, "action", "", "only events of this action, like host.add")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many events, 1 to 1000 (default 100)")
	fl.StringVar(&f.Marker, "marker", "", "show the page after this marker, which the previous page printed")
	return cmd
}

func (a *app) clusterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-show",
		Short: "Show the Kubernetes cluster the controller manages; its ca_hash is the cluster CA's pin (kubeadm's), ca-show has the controller's",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			cl, err := c.Cluster(ctx)
			if err != nil {
				return err
			}
			if !cl.Configured {
				fmt.Fprintln(a.io.Err, "The controller manages no Kubernetes cluster: start it with --kubeconfig.")
			}
			return a.show(view{raw: cl, rows: [][]field{{
				{"configured", strconv.FormatBool(cl.Configured)}, {"server", cl.Server}, {"version", cl.Version},
				{"nodes", strconv.Itoa(cl.Nodes)}, {"nodes_ready", strconv.Itoa(cl.NodesReady)}, {"ca_hash", cl.CAHash},
			}}})
		}),
	}
}

func (a *app) controllerList() *cobra.Command {
	return &cobra.Command{
		Use:   "controller-list",
		Short: "List the controllers that share the database: which leads, its epoch and duties, which are lost",
		Args:  a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			cs, err := c.ListControllers(ctx)
			if err != nil {
				return err
			}
			if cs == nil {
				cs = []apitype.Controller{}
			}
			v := view{raw: cs, list: true, names: []string{"name", "address", "version", "state", "leader", "epoch", "duties", "last_seen"}}
			for _, ct := range cs {
				epoch := ""
				if ct.Leader {
					epoch = strconv.FormatInt(ct.Epoch, 10)
				}
				v.rows = append(v.rows, []field{
					{"name", ct.Name}, {"address", ct.Address}, {"version", ct.Version}, {"state", ct.State},
					{"leader", strconv.FormatBool(ct.Leader)}, {"epoch", epoch}, {"duties", strings.Join(ct.Duties, ", ")},
					{"started_at", timeText(ct.StartedAt)}, {"last_seen", timeText(ct.LastSeen)},
				})
			}
			return a.show(v)
		}),
	}
}

// controllerDelete removes a controller that is gone for good (a machine retired or
// renamed): its row stays, and alarm 400.005 with it, until it runs again or is removed.
func (a *app) controllerDelete() *cobra.Command {
	cmd := a.deleteCommand("controller-delete NAME", "Remove a lost controller (alarm 400.005) that is gone for good from the list",
		"controller %s from the list",
		a.completer(func(ctx context.Context, c *client.Client) ([]string, error) {
			cs, err := c.ListControllers(ctx)
			var names []string
			for _, ct := range cs {
				if ct.State == apitype.ControllerLost {
					names = append(names, ct.Name)
				}
			}
			return names, err
		}),
		func(ctx context.Context, c *client.Client, name string) error { return c.DeleteController(ctx, name) })
	cmd.Long = "Remove a controller that is gone for good (its machine retired or renamed) from the list, and clear\n" +
		"its alarm 400.005. Only a controller the leader counts lost can be removed: a running one\n" +
		"renews its row (stop it, and it leaves the list itself)."
	return cmd
}

func (a *app) caShow() *cobra.Command {
	return &cobra.Command{
		Use:   "ca-show",
		Short: "Show the controller's own CA and its pin, which hb-agent join takes as --ca-hash",
		Long: "Show the controller's own CA and its pin, which hb-agent join takes as --ca-hash.\n" +
			"It is not the Kubernetes cluster's CA pin: cluster-show has that one, for kubeadm.",
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			data, err := c.CA(ctx)
			if err != nil {
				return err
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != "CERTIFICATE" {
				return fmt.Errorf("the controller's CA is not a PEM certificate")
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("the controller's CA: %w", err)
			}
			raw := struct {
				CAHash   string    `json:"ca_hash"`
				Subject  string    `json:"subject"`
				NotAfter time.Time `json:"not_after"`
			}{pki.CAHash(cert), cert.Subject.String(), cert.NotAfter.UTC()}
			return a.show(view{raw: raw, rows: [][]field{{
				{"ca_hash", raw.CAHash}, {"subject", raw.Subject}, {"not_after", timeText(raw.NotAfter)},
			}}})
		}),
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hbctl's version and, when reachable, the controller's",
		Args:  a.args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.io.Out, "hbctl: %s\n", version.String())
			c, err := a.client()
			if err != nil {
				fmt.Fprintf(a.io.Out, "controller: unknown (%v)\n", err)
				return nil
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				fmt.Fprintf(a.io.Out, "controller: unknown (%v)\n", err)
				return nil
			}
			fmt.Fprintf(a.io.Out, "controller: %s (API %s)\n", v.Version, v.APIVersion)
			return nil
		},
	}
}
