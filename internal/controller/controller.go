// Package controller assembles hb-controller: the data directory, the store,
// the CA and serving certificate, the first admin token, the inventory and
// the HTTPS API, and runs them until told to stop.
package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"hummingbird.io/hummingbird/internal/api"
	"hummingbird.io/hummingbird/internal/appstate"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/eventlog"
	"hummingbird.io/hummingbird/internal/feed"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/hostlock"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/supervisor"
	"hummingbird.io/hummingbird/internal/version"
	"hummingbird.io/hummingbird/internal/wire"
	"hummingbird.io/hummingbird/internal/workloads"
)

// AdminTokenFile is the file in the data directory that receives the first
// admin token.
const AdminTokenFile = "admin.token"

// Config is everything hb-controller can be told.
type Config struct {
	DataDir string // holds the SQLite file, the CA, certificates, admin.token
	Listen  string // host:port of the HTTPS API
	DB      string // "" for SQLite in DataDir, or a postgres:// URL
	// TLSCert and TLSKey name a serving certificate to use instead of one
	// made by the controller's CA.
	TLSCert, TLSKey string
	// TLSNames are extra DNS names and IP addresses for the made certificate.
	TLSNames []string
	// The management network: mode (static|dynamic), subnet, and the
	// addresses of the controllers on it, which no host may take.
	MgmtMode          string
	MgmtSubnet        string
	MgmtControllerIPs []string
	// DHCPInterfaces are the interfaces the DHCP server answers on (none:
	// no DHCP server). Relays of routed edge subnets send to their address.
	DHCPInterfaces []string
	// DHCPRelays are the relay agents' addresses on the edge subnets (the
	// giaddr they write) whose relayed requests the DHCP server answers.
	DHCPRelays []string
	// Heartbeat is the loose-management heartbeat of agents.
	Heartbeat mtce.Config
	// AlarmWebhook, when set, receives every alarm raise and clear.
	AlarmWebhook string
	// EventRetention is how much of the event log the leader keeps.
	EventRetention eventlog.Policy
	// Kubeconfig names the Kubernetes cluster the controller manages.
	Kubeconfig string
	// Provision is how hosts are provisioned; its WorkDir, KnownHosts,
	// Vars and Log are set by the controller.
	Provision provision.Config
	// ProvisionVars names a YAML file of site variables for the playbook.
	ProvisionVars string
	// NodeSyncInterval is the time between passes that make the cluster's
	// Nodes follow the inventory.
	NodeSyncInterval time.Duration
	// AppSyncInterval is the time between passes that keep the DaemonSets
	// and Services of redundant apps in the cluster.
	AppSyncInterval time.Duration
	// AgentAutoAdd adds nodes that join with a valid enroll token but are
	// not in the inventory, as edgeworkers, instead of refusing them.
	AgentAutoAdd bool
	// AgentRenewBefore is how long before its certificate expires an
	// agent is asked to renew it.
	AgentRenewBefore time.Duration
	// Name is this controller's name among those that share the database
	// ("" for the machine's hostname); a restart keeps it.
	Name string
	// LeaderLease is how long the leader's lease lasts without renewal
	// (package leader): a controller that shares the database takes the
	// leader's duties over about this long after the leader is lost.
	LeaderLease time.Duration
	// MigrateUnderOlder lets this controller bring the schema up while
	// older controllers still run on the database (package roster's
	// MigrationGuard refuses by default).
	MigrateUnderOlder bool
}

// Defaults returns the zero-setup configuration.
func Defaults() Config {
	return Config{
		DataDir:           "./data",
		Listen:            ":6385",
		MgmtMode:          "static",
		MgmtSubnet:        "192.168.204.0/24",
		MgmtControllerIPs: []string{"192.168.204.1", "192.168.204.2"},
		Heartbeat:         mtce.DefaultConfig(),
		Provision:         provision.DefaultConfig(),
		NodeSyncInterval:  15 * time.Second,
		AppSyncInterval:   15 * time.Second,
		AgentRenewBefore:  pki.AgentCertValidity / 3,
		LeaderLease:       leader.DefaultTTL,
		EventRetention:    eventlog.DefaultPolicy(),
	}
}

// Controller is a running controller's parts.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	Store     store.Store
	CA        *pki.CA
	tls       *tls.Config
	api       *api.Server
	Tokens    *auth.Tokens
	Inventory *inventory.Service
	Monitor   *mtce.Monitor
	Provision *provision.Runner
	Locks     *hostlock.Locker
	// Apps is the view of redundant apps: desired states and reports.
	Apps *appstate.Tracker
	// Nodes reconciles the cluster's Nodes; nil without a cluster.
	Nodes *nodes.Reconciler
	// Workloads keeps the DaemonSets and Services of redundant apps in the
	// cluster; nil without a cluster.
	Workloads *workloads.Reconciler
	// AdminToken is the first admin token when this start made it.
	AdminToken string
	// ID names this run of the controller among those that share the
	// database (a new one at each start).
	ID string
	// Elector campaigns for the leadership of the duties that run once.
	Elector *leader.Elector
	// Feed tells the parts of changes from the event log.
	Feed *feed.Feed
	// parts are the background parts Serve runs (see partList).
	parts *supervisor.Supervisor
	// roster renews this controller's row and, on the leader, watches the
	// others'.
	roster *roster.Roster
	// addr is where the API listens, once Serve listens.
	addr atomic.Value
}

// New opens the data directory and the database and prepares the API; it
// serves nothing yet.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Controller, error) {
	// Every path is resolved once, now: jobs run programs in directories
	// of their own, where a relative path would name something else.
	if err := absPaths(&cfg); err != nil {
		return nil, err
	}
	// Settings are checked before anything is written.
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("give both --tls-cert and --tls-key, or neither")
		}
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
	}
	if err := inventory.CheckManagementSettings(cfg.MgmtMode, cfg.MgmtSubnet, cfg.MgmtControllerIPs); err != nil {
		return nil, err
	}
	if cfg.AgentRenewBefore < 0 {
		return nil, fmt.Errorf("--agent-renew-before %v: give a positive duration, such as %v", cfg.AgentRenewBefore, pki.AgentCertValidity/3)
	}
	if err := cfg.Heartbeat.Check(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("--name not given and no hostname: %w", err)
		}
		cfg.Name = host
	}
	if cfg.LeaderLease < 500*time.Millisecond || cfg.LeaderLease > time.Minute {
		return nil, fmt.Errorf("--leader-lease %v: give a duration from 500ms to 1m, such as %v (the default)", cfg.LeaderLease, leader.DefaultTTL)
	}
	if _, err := dhcpRelays(cfg.DHCPRelays); err != nil {
		return nil, err
	}
	if cfg.AlarmWebhook != "" {
		if err := fm.CheckURL(cfg.AlarmWebhook); err != nil {
			return nil, err
		}
	}
	if err := cfg.EventRetention.Check(); err != nil {
		return nil, err
	}
	if err := cfg.Provision.Check(); err != nil {
		return nil, err
	}
	if cfg.ProvisionVars != "" {
		vars, err := provision.LoadVars(cfg.ProvisionVars)
		if err != nil {
			return nil, err
		}
		cfg.Provision.Vars = vars
	}
	// The data directory holds the CA key and the database: only the
	// controller's user may enter it, also when it was made before.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dsn := cfg.DB
	if dsn == "" {
		dsn = store.SQLitePath(cfg.DataDir)
	}
	st, err := openStore(ctx, cfg, dsn, log)
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, log: log, Store: st, ID: uuid.NewString()}
	if err := c.setup(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return c, nil
}

func (c *Controller) setup(ctx context.Context) error {
	// Every part writes through the feed's store, whose writes that append
	// an event wake the feed at once.
	c.Feed = feed.New(c.Store, 0, c.log)
	c.Store = c.Feed.Store()
	now := time.Now()
	if err := c.checkSharedCA(ctx); err != nil {
		return err
	}
	ca, caCreated, err := pki.EnsureCA(c.cfg.DataDir, now)
	if err != nil {
		return err
	}
	c.CA = ca
	if err := c.pinCA(ctx); err != nil {
		return err
	}
	var cert tls.Certificate
	if c.cfg.TLSCert != "" {
		if cert, err = tls.LoadX509KeyPair(c.cfg.TLSCert, c.cfg.TLSKey); err != nil {
			return fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
	} else {
		names := append(pki.DefaultNames(), c.cfg.TLSNames...)
		if host, _, err := net.SplitHostPort(c.cfg.Listen); err == nil && host != "" {
			names = append(names, host)
		}
		if cert, err = pki.EnsureServing(c.cfg.DataDir, ca, names, now); err != nil {
			return err
		}
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Cert)
	// Agents present their client certificate; people and scripts use
	// bearer tokens and present none.
	c.tls = &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: wire.CipherSuites(),
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs,
	}

	c.Tokens = auth.New(c.Store, auth.Options{})
	if c.AdminToken, err = c.Tokens.Bootstrap(ctx); err != nil {
		return fmt.Errorf("first admin token: %w", err)
	}
	tokenPath := filepath.Join(c.cfg.DataDir, AdminTokenFile)
	if c.AdminToken != "" {
		if err := pki.WriteSecretFile(tokenPath, []byte(c.AdminToken+"\n")); err != nil {
			return fmt.Errorf("write the first admin token: %w (run hb-controller admin-token to make another)", err)
		}
	}
	if caCreated || c.AdminToken != "" {
		c.log.Info("first start: created the controller CA and an admin token",
			"ca_file", filepath.Join(c.cfg.DataDir, pki.CACertFile), "ca_hash", pki.CAHash(ca.Cert),
			"admin_token_file", tokenPath, "admin_token_created", c.AdminToken != "")
	}

	c.Inventory = inventory.New(c.Store, inventory.Options{})
	pool, created, err := c.Inventory.EnsureManagementPool(ctx, c.cfg.MgmtMode, c.cfg.MgmtSubnet, c.cfg.MgmtControllerIPs)
	if err != nil {
		return err
	}
	if created {
		c.log.Info("made the management pool", "network", pool.Network, "mode", pool.Row.Mode, "reserved", pool.Row.Reserved)
	} else if pool.Network.String() != c.cfg.MgmtSubnet || pool.Row.Mode != c.cfg.MgmtMode {
		c.log.Info("the management pool is stored; the --mgmt-* settings only make it at first start",
			"network", pool.Network, "mode", pool.Row.Mode)
	}

	// The reconciler of the apps' objects is made below, when there is a cluster.
	var activeChanged func()
	c.Apps = appstate.New(c.Store, appstate.Config{Log: c.log, ActiveChanged: func() {
		if activeChanged != nil {
			activeChanged()
		}
	}})
	if err := c.Apps.Refresh(ctx); err != nil {
		return fmt.Errorf("apps: %w", err)
	}
	hb := c.cfg.Heartbeat
	hb.Log = c.log
	hb.Apps = c.Apps
	hb.ID = c.ID
	c.Monitor = mtce.New(c.Store, hb)
	if err := c.Monitor.Start(ctx); err != nil {
		return fmt.Errorf("heartbeat monitor: %w", err)
	}

	var cluster *kube.Cluster
	if c.cfg.Kubeconfig != "" {
		if cluster, err = kube.Load(c.cfg.Kubeconfig); err != nil {
			return err
		}
	}

	pc := c.cfg.Provision
	if pc.SSHKeyDir == "" {
		pc.SSHKeyDir = filepath.Join(c.cfg.DataDir, "ssh")
	}
	pc.KnownHosts = filepath.Join(c.cfg.DataDir, "ssh_known_hosts")
	pc.WorkDir = filepath.Join(c.cfg.DataDir, "provision")
	if err := os.MkdirAll(pc.WorkDir, 0o700); err != nil {
		return fmt.Errorf("provisioning directory: %w", err)
	}
	if pc.BundleDir != "" {
		if st, err := os.Stat(pc.BundleDir); err != nil || !st.IsDir() {
			return fmt.Errorf("--bundle-dir %s is not a directory", pc.BundleDir)
		}
	}
	pc.Log, pc.Name = c.log, c.cfg.Name
	c.Provision = provision.New(c.Store, cluster, pc)
	c.Locks = hostlock.New(c.Store, cluster, hostlock.Config{Log: c.log, Name: c.cfg.Name, NextHeartbeat: c.Monitor.NextHeartbeat,
		Switchover: func(ctx context.Context, actor, app string) error {
			if _, err := c.Inventory.RequestSwitchover(ctx, actor, app, ""); err != nil {
				return err
			}
			return c.Apps.Refresh(ctx)
		}})

	// Reactions to changes come from their events, whichever controller
	// made them. The apps' view answers heartbeats on every controller;
	// hosts are its members. The confirmed active member of an app also
	// kicks the apps' objects in process at once, for the Service to follow.
	c.Feed.On("apps", c.Apps.Kick, "app.", "host.")
	c.Feed.On("provision", c.Provision.Kick, "host.provision")
	c.Feed.On("locks", c.Locks.Kick, "host.lock.start", "host.lock.cancelling")
	if cluster != nil {
		c.Nodes = nodes.New(c.Store, cluster, nodes.Config{Interval: c.cfg.NodeSyncInterval, Log: c.log, Heartbeats: c.Monitor})
		c.Feed.On("nodes", c.Nodes.Kick, "host.add", "host.update", "host.delete", "host.label.", "group.label.")
		c.Workloads = workloads.New(c.Store, cluster, workloads.Config{Interval: c.cfg.AppSyncInterval, Log: c.log})
		c.Feed.On("workloads", c.Workloads.Kick, "app.", "host.update", "host.delete")
		activeChanged = c.Workloads.Kick
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.api = api.New(api.Deps{
		Inventory: c.Inventory,
		Tokens:    c.Tokens,
		Ready:     c.Store.Ping,
		Version:   version.String(),
		Log:       c.log,
		Registry:  reg,
		Cluster:   cluster,
		Provision: c.Provision,
		Locks:     c.Locks,
		Apps:      c.Apps,
		Agents: &api.AgentDeps{Store: c.Store, CA: c.CA, Monitor: c.Monitor, AutoAdd: c.cfg.AgentAutoAdd,
			RenewBefore: c.cfg.AgentRenewBefore},
	})
	c.Elector = leader.New(leader.Config{Store: c.Store, ID: c.ID, Address: c.cfg.Listen, TTL: c.cfg.LeaderLease, Log: c.log})
	c.addr.Store(c.cfg.Listen)
	parts := c.partList()
	var duties []string
	for _, p := range parts {
		if p.Leader {
			duties = append(duties, p.Name)
		}
	}
	c.roster = roster.New(roster.Config{Store: c.Store, Name: c.cfg.Name, RunID: c.ID, Version: version.String(),
		Address: func() string { return c.addr.Load().(string) }, Duties: duties, Every: c.cfg.LeaderLease, Log: c.log})
	c.parts = supervisor.New(parts, c.Elector, supervisor.DefaultBackoff, c.log)
	return nil
}

// settingCAHash is the setting that holds the pin of the CA every controller
// on the database signs agents' certificates with.
const settingCAHash = "ca_hash"

// checkSharedCA refuses to make a CA of its own in a controller whose data
// directory has none, when the database is shared with controllers that use
// one already: agents enrolled through one controller must be accepted by
// every other.
func (c *Controller) checkSharedCA(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.cfg.DataDir, pki.CACertFile)); err == nil {
		return nil // pinCA compares it
	}
	var pin string
	err := c.Store.Read(ctx, func(tx store.Tx) (err error) { pin, err = tx.Setting(settingCAHash); return err })
	if errors.Is(err, store.ErrNotFound) {
		return nil // the first controller on this database
	} else if err != nil {
		return err
	}
	return fmt.Errorf("the database is shared with controllers whose CA is %s, and %s has none: copy %s and %s from "+
		"another controller's data directory into it before starting this one (its agents must be accepted by every controller)",
		pin, c.cfg.DataDir, pki.CACertFile, pki.CAKeyFile)
}

// pinCA writes this controller's CA pin as the database's at the first
// start on it, and refuses a CA that is not the pinned one.
func (c *Controller) pinCA(ctx context.Context) error {
	ours := pki.CAHash(c.CA.Cert)
	var pin string
	err := c.Store.Write(ctx, func(tx store.Tx) error {
		var err error
		if pin, err = tx.Setting(settingCAHash); errors.Is(err, store.ErrNotFound) {
			pin = ours
			return tx.InitSetting(settingCAHash, ours)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pinning the controllers' CA in the database: %w", err)
	}
	if pin != ours {
		return fmt.Errorf("this controller's CA (%s in %s) is %s, but the controllers sharing this database use %s: "+
			"replace %s and %s with theirs (agents enrolled through either must be accepted by both)",
			pki.CACertFile, c.cfg.DataDir, ours, pin, pki.CACertFile, pki.CAKeyFile)
	}
	return nil
}

// API returns the REST API server.
func (c *Controller) API() *api.Server { return c.api }

// TLSConfig returns the serving TLS configuration.
func (c *Controller) TLSConfig() *tls.Config { return c.tls }

// Serve serves the API with TLS on ln and runs the background parts (see
// parts) until ctx ends, then shuts down gracefully.
func (c *Controller) Serve(ctx context.Context, ln net.Listener) error {
	if len(c.cfg.DHCPInterfaces) > 0 {
		// Open the sockets once now, so that a wrong interface fails the
		// start; the DHCP part opens its own while it leads.
		for _, name := range c.cfg.DHCPInterfaces {
			l, err := dhcp.Listen(name)
			if err != nil {
				return fmt.Errorf("%w (check --dhcp-interface)", err)
			}
			l.Conn.Close()
		}
	}
	c.addr.Store(shownAddress(ln.Addr()))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	partsDone := make(chan struct{})
	go func() { c.parts.Run(ctx); close(partsDone) }()
	err := c.serveAPI(ctx, ln)
	cancel()
	<-partsDone
	return err
}

// partList is every background part of the controller, in one list. The
// duties that must run once however many controllers share the database
// run on the leader alone: the heartbeat monitor's deadlines, the Node and
// app reconcilers, provisioning jobs and host locks (which any controller's
// API asks for), the alarm webhook, DHCP and the event log's retention. The
// event feed, which kicks the parts that react to changes, the apps' view,
// which answers heartbeats, and the notes of the hosts heard from, which
// the leader's monitor counts, run on every controller.
func (c *Controller) partList() []supervisor.Spec {
	void := func(run func(context.Context)) supervisor.Part {
		return supervisor.Func(func(ctx context.Context) error { run(ctx); return nil })
	}
	parts := []supervisor.Spec{
		{Name: "feed", Part: c.Feed},
		{Name: "apps", Part: void(c.Apps.Run)},
		{Name: "heard", Part: void(c.Monitor.RunFlush)},
		{Name: "roster", Part: supervisor.Func(func(ctx context.Context) error { return c.roster.Run(ctx) })},
		{Name: "monitor", Leader: true, Part: void(c.Monitor.Run)},
		{Name: "provision", Leader: true, Part: supervisor.Func(c.Provision.Run)},
		{Name: "locks", Leader: true, Part: supervisor.Func(c.Locks.Run)},
		{Name: "controllers", Leader: true, Part: supervisor.Func(func(ctx context.Context) error { return c.roster.Watch(ctx) })},
		{Name: "retention", Leader: true, Part: eventlog.New(eventlog.Config{Store: c.Store, Policy: c.cfg.EventRetention, Log: c.log})},
	}
	if c.Nodes != nil {
		parts = append(parts, supervisor.Spec{Name: "nodes", Leader: true, Part: void(c.Nodes.Run)})
	}
	if c.Workloads != nil {
		parts = append(parts, supervisor.Spec{Name: "workloads", Leader: true, Part: void(c.Workloads.Run)})
	}
	if c.cfg.AlarmWebhook != "" {
		w := &fm.Webhook{URL: c.cfg.AlarmWebhook, Store: c.Store, Log: c.log}
		parts = append(parts, supervisor.Spec{Name: "webhook", Leader: true, Part: w})
	}
	if len(c.cfg.DHCPInterfaces) > 0 {
		parts = append(parts, supervisor.Spec{Name: "dhcp", Leader: true, Part: supervisor.Func(c.runDHCP)})
	}
	return parts
}

// runDHCP serves DHCP on the configured interfaces until ctx ends.
func (c *Controller) runDHCP(ctx context.Context) error {
	relays, err := dhcpRelays(c.cfg.DHCPRelays)
	if err != nil {
		return err
	}
	srv, err := dhcp.New(dhcp.Config{Interfaces: c.cfg.DHCPInterfaces, Relays: relays, Inventory: c.Inventory,
		Logger: c.log.With("logger", "dhcp")})
	if err != nil {
		return err
	}
	if err := srv.Run(ctx); err != nil {
		return fmt.Errorf("%w (check --dhcp-interface)", err)
	}
	return nil
}

// Parts says what each background part is doing.
func (c *Controller) Parts() []supervisor.State { return c.parts.States() }

func (c *Controller) serveAPI(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           c.api.Handler(),
		TLSConfig:         c.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.log.With("logger", "http").Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, c.tls)) }()
	c.log.Info("serving the API", "addr", ln.Addr().String(), "db", c.Store.Dialect(), "version", version.String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	c.log.Info("stopped")
	return err
}

// Close releases the store.
func (c *Controller) Close() error { return c.Store.Close() }

// Run is hb-controller: New, listen on cfg.Listen, Serve.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	c, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (change it with --listen or HB_LISTEN)", cfg.Listen, err)
	}
	return c.Serve(ctx, ln)
}

// NewAdminToken makes another admin token directly in the database, for an
// operator who lost theirs. It needs access to the data directory or the
// database, which is the proof of authority.
func NewAdminToken(ctx context.Context, cfg Config) (string, error) {
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer st.Close()
	c, err := auth.New(st, auth.Options{}).Create(ctx, "hb-controller admin-token", "admin", "made with hb-controller admin-token", 0)
	if err != nil {
		return "", err
	}
	return c.Secret, nil
}

// ForgetReader deletes the position a reader of the event log keeps, for a
// reader that is gone for good, such as an alarm webhook taken out of the
// configuration: the event log keeps every event after it (see package
// eventlog) until then. A webhook configured again starts at the newest
// event. Like NewAdminToken it works on the database directly.
func ForgetReader(ctx context.Context, cfg Config, name string) error {
	st, err := openExisting(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	var deleted bool
	if err := st.Write(ctx, func(tx store.Tx) (err error) { deleted, err = tx.DeleteCursor(name); return err }); err != nil {
		return err
	}
	if !deleted {
		return fmt.Errorf("no reader %q keeps a position in the event log: give the reader the controller's warning "+
			"\"a reader holds the event log past its retention\" names", name)
	}
	return nil
}

// openExisting opens the database of cfg, which a controller made before.
func openExisting(ctx context.Context, cfg Config) (store.Store, error) {
	dsn := cfg.DB
	if dsn == "" {
		dsn = store.SQLitePath(cfg.DataDir)
		if _, err := os.Stat(dsn); err != nil {
			return nil, fmt.Errorf("no database at %s: %w (give --data-dir or --db)", dsn, err)
		}
	}
	return openStore(ctx, cfg, dsn, nil)
}

// openStore opens dsn, bringing its schema up unless older controllers
// still run on it (see roster.MigrationGuard).
func openStore(ctx context.Context, cfg Config, dsn string, log *slog.Logger) (store.Store, error) {
	guard := roster.MigrationGuard{Every: cfg.LeaderLease, Allow: cfg.MigrateUnderOlder, Log: log}
	return store.OpenWith(ctx, dsn, store.Options{BeforeMigrate: guard.Check})
}

// shownAddress is where the API listens, as another machine would reach it:
// the machine's hostname in place of a wildcard address.
func shownAddress(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

// dhcpRelays parses --dhcp-relay.
func dhcpRelays(addrs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil || !ip.Is4() || ip.IsUnspecified() {
			return nil, fmt.Errorf("--dhcp-relay %q: give the IPv4 address a relay agent writes as giaddr (its address on the hosts' subnet)", a)
		}
		out = append(out, ip)
	}
	return out, nil
}

// absPaths makes every path of cfg absolute, against the working directory.
func absPaths(cfg *Config) error {
	for _, p := range []*string{&cfg.DataDir, &cfg.TLSCert, &cfg.TLSKey, &cfg.Kubeconfig, &cfg.ProvisionVars,
		&cfg.Provision.SSHKeyDir, &cfg.Provision.BundleDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("path %s: %w", *p, err)
		}
		*p = abs
	}
	return nil
}
