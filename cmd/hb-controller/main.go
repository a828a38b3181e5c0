// Command hb-controller is Hummingbird's controller: the inventory, its
// REST API and, later, everything that manages edge nodes. With no settings
// it keeps its state in ./data on an embedded SQLite database.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hummingbird.io/hummingbird/internal/config"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Getenv).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hb-controller:", err)
		os.Exit(1)
	}
}

// settings are the flags every subcommand shares.
type settings struct {
	cfg        controller.Config
	configFile string
	logLevel   string
	logFormat  string
	heartbeats []string
}

func (s *settings) flags(fs *pflag.FlagSet) {
	d := controller.Defaults()
	fs.StringVar(&s.configFile, "config", "", "YAML file of settings named like the flags")
	fs.StringVar(&s.cfg.DataDir, "data-dir", d.DataDir, "directory for the SQLite database, the CA, certificates and admin.token")
	fs.StringVar(&s.cfg.Listen, "listen", d.Listen, "address of the HTTPS API")
	fs.StringVar(&s.cfg.DB, "db", "", "PostgreSQL URL (postgres://…); empty for SQLite in the data directory")
	fs.StringVar(&s.cfg.TLSCert, "tls-cert", "", "serving certificate (PEM) instead of one made by the controller's CA")
	fs.StringVar(&s.cfg.TLSKey, "tls-key", "", "key of --tls-cert (PEM)")
	fs.StringSliceVar(&s.cfg.TLSNames, "tls-san", nil, "extra DNS names or IP addresses for the made serving certificate")
	fs.StringVar(&s.cfg.MgmtMode, "mgmt-mode", d.MgmtMode, "management network addressing: static (operators give mgmt_ip) or dynamic (the controller allocates)")
	fs.StringVar(&s.cfg.MgmtSubnet, "mgmt-subnet", d.MgmtSubnet, "management network subnet")
	fs.StringSliceVar(&s.cfg.MgmtControllerIPs, "mgmt-controller-ips", d.MgmtControllerIPs, "controller addresses on the management network, never given to hosts")
	fs.StringSliceVar(&s.cfg.DHCPInterfaces, "dhcp-interface", nil, "serve DHCP to the inventory's hosts on these interfaces (default: no DHCP server)")
	fs.StringSliceVar(&s.cfg.DHCPRelays, "dhcp-relay", nil, "answer requests relayed by these relay agents (the giaddr each writes: its address on the hosts' subnet); others are ignored")
	fs.DurationVar(&s.cfg.Heartbeat.Interval, "heartbeat-interval", d.Heartbeat.Interval, "the period agents send heartbeats at")
	fs.IntVar(&s.cfg.Heartbeat.DegradeAfter, "heartbeat-degrade-after", d.Heartbeat.DegradeAfter, "missed heartbeats before a host is degraded")
	fs.IntVar(&s.cfg.Heartbeat.FailAfter, "heartbeat-fail-after", d.Heartbeat.FailAfter, "missed heartbeats before a host is failed")
	fs.StringSliceVar(&s.heartbeats, "heartbeat", nil, "heartbeat of one personality as PERSONALITY=INTERVAL/DEGRADE/FAIL, like worker=10s/3/6 (repeat)")
	fs.StringVar(&s.cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the Kubernetes cluster the controller manages")
	fs.StringVar(&s.cfg.Provision.SSHKeyDir, "ssh-key-dir", "", "directory of the SSH private keys hosts name in ssh_key (default: DATA_DIR/ssh)")
	fs.StringVar(&s.cfg.Provision.PackageSource, "provision-source", d.Provision.PackageSource, "where provisioned hosts get kubelet and kubeadm: offline (the --bundle-dir bundle) or online (the Kubernetes package repositories)")
	fs.StringVar(&s.cfg.Provision.BundleDir, "bundle-dir", "", "offline bundle directory, with a subdirectory per Kubernetes version (see playbooks/README.md)")
	fs.StringVar(&s.cfg.ProvisionVars, "provision-vars", "", "YAML file of site variables for the provisioning playbook (see playbooks/README.md)")
	fs.IntVar(&s.cfg.Provision.Parallel, "provision-parallel", d.Provision.Parallel, "how many provisioning jobs run at once")
	fs.DurationVar(&s.cfg.Provision.Timeout, "provision-timeout", d.Provision.Timeout, "how long one run of the playbook may take")
	fs.DurationVar(&s.cfg.Provision.ReadyTimeout, "provision-ready-timeout", d.Provision.ReadyTimeout, "how long a provisioned host's Node may take to be Ready")
	fs.DurationVar(&s.cfg.NodeSyncInterval, "node-sync-interval", d.NodeSyncInterval, "how often the Nodes and hosts that changed are reconciled (labels, group, role; the Nodes are watched)")
	fs.DurationVar(&s.cfg.AppSyncInterval, "app-sync-interval", d.AppSyncInterval, "how often redundant apps' DaemonSets and Services are made to follow the inventory (and soon after every change)")
	fs.BoolVar(&s.cfg.AgentAutoAdd, "agent-auto-add", false, "add nodes that join with a valid enroll token but are not in the inventory, as edgeworkers")
	fs.DurationVar(&s.cfg.AgentRenewBefore, "agent-renew-before", d.AgentRenewBefore, "how long before its certificate expires (90 days after it was signed) an agent renews it")
	fs.StringVar(&s.cfg.Name, "name", "", "this controller's name among those sharing the database (default: the machine's hostname)")
	fs.DurationVar(&s.cfg.LeaderLease, "leader-lease", d.LeaderLease, "how long the leader's lease lasts unrenewed: controllers sharing a PostgreSQL database take the leader's duties over about this long after it is lost")
	fs.BoolVar(&s.cfg.MigrateUnderOlder, "migrate-under-older", false, "bring the database's schema up even while older controllers still run on it (by default this controller refuses and says which run)")
	fs.StringVar(&s.cfg.AlarmWebhook, "alarm-webhook", "", "URL that receives every alarm raise and clear as JSON, retried until delivered")
	fs.Int64Var(&s.cfg.EventRetention.Count, "event-retention-count", d.EventRetention.Count, "the most events the event log keeps, the newest (0: any number)")
	fs.DurationVar(&s.cfg.EventRetention.Age, "event-retention-age", d.EventRetention.Age, "how long the event log keeps an event, like 2160h for 90 days (0: any age)")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&s.logFormat, "log-format", "text", "text or json")
}

// load layers the config file and the environment under the flags.
func (s *settings) load(cmd *cobra.Command, getenv func(string) string) error {
	fs := cmd.Flags()
	if !fs.Changed("config") {
		if v := getenv(config.EnvName("config")); v != "" {
			s.configFile = v
		}
	}
	file, err := config.ReadFile(s.configFile, true)
	if err != nil {
		return err
	}
	if err := config.Apply(fs, file, getenv); err != nil {
		return err
	}
	for _, h := range s.heartbeats {
		p, timing, ok := strings.Cut(h, "=")
		if !ok {
			return fmt.Errorf("--heartbeat %q: write PERSONALITY=INTERVAL/DEGRADE/FAIL, like worker=10s/3/6", h)
		}
		t, err := mtce.ParseTiming(timing)
		if err != nil {
			return fmt.Errorf("--heartbeat %s: %w", p, err)
		}
		if s.cfg.Heartbeat.Personalities == nil {
			s.cfg.Heartbeat.Personalities = map[string]mtce.Timing{}
		}
		s.cfg.Heartbeat.Personalities[p] = t
	}
	return nil
}

func (s *settings) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", s.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(s.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", s.logFormat)
}

func newRoot(getenv func(string) string) *cobra.Command {
	s := &settings{}
	root := &cobra.Command{
		Use:   "hb-controller",
		Short: "Hummingbird controller: the edge-node inventory and its HTTPS API",
		Long: `hb-controller serves Hummingbird's inventory over HTTPS.

With no settings it keeps everything in ./data: an embedded SQLite database,
its own CA (ca.crt), a serving certificate, and on first start an admin token
(admin.token, readable only by its owner). --db postgres://… puts the
inventory on PostgreSQL instead. Every flag also reads an HB_ environment
variable and a key of the --config YAML file.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.load(cmd, getenv); err != nil {
				return err
			}
			log, err := s.logger()
			if err != nil {
				return err
			}
			log = log.With("logger", "controller")
			return controller.Run(cmd.Context(), s.cfg, log)
		},
	}
	s.flags(root.PersistentFlags())
	config.DocumentEnv(root.PersistentFlags())

	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "admin-token",
		Short: "Make another admin token directly in the database (when the first one is lost)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.load(cmd, getenv); err != nil {
				return err
			}
			tok, err := controller.NewAdminToken(cmd.Context(), s.cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "forget-reader NAME",
		Short: "Let the event log be pruned past a reader that is gone for good, such as a removed alarm webhook (alarm-webhook)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := s.load(cmd, getenv); err != nil {
				return err
			}
			if err := controller.ForgetReader(cmd.Context(), s.cfg, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Forgot reader %s: the event log is pruned past it from the next pass.\n", args[0])
			return nil
		},
	})
	return root
}
