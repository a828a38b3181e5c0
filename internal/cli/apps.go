package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
)

// appFields are an app's fields; active, epoch, standbys and the last
// switchover stay empty until the group's agents run the app.
func appFields(ap apitype.App) []field {
	var members []string
	for _, m := range ap.Members {
		state := m.Availability
		switch {
		case m.Role == apitype.RoleUnknown:
			// Its report is not confirmed by the app's group: it may be
			// cut off from it, and is shown neither active nor standby.
			state += ", unknown"
			if m.UnknownSince != nil {
				state += " since " + timeText(*m.UnknownSince)
			}
		case m.Role != "":
			state += ", " + m.Role
			if !m.Healthy {
				state += ", unhealthy"
			}
		}
		members = append(members, m.Hostname+" ("+state+")")
	}
	port := ""
	if ap.Port != 0 {
		port = strconv.Itoa(ap.Port)
	}
	epoch := ""
	if ap.Epoch != 0 {
		epoch = strconv.FormatInt(ap.Epoch, 10)
	}
	health := ap.Health
	if ap.HealthPath != "" {
		health += " " + ap.HealthPath
	}
	pending := ""
	if p := ap.PendingSwitchover; p != nil {
		to := p.To
		if to == "" {
			to = "any healthy standby"
		}
		pending = fmt.Sprintf("%d to %s, asked %s", p.Seq, to, timeText(p.RequestedAt))
		if w := awaitText(p, time.Now()); w != "" {
			pending += "; " + w
		}
	}
	detection := ""
	if ap.HeartbeatMillis != 0 {
		detection = fmt.Sprintf("%d ms, %d probes", ap.HeartbeatMillis, ap.Probes)
	}
	return []field{
		{"name", ap.Name}, {"group", ap.Group}, {"image", ap.Image}, {"port", port}, {"vip", ap.VIP},
		{"members", strings.Join(members, ", ")}, {"witness", ap.Witness}, {"health", health}, {"heartbeat", detection},
		{"active", ap.Active}, {"standbys", strings.Join(ap.Standbys, ", ")}, {"epoch", epoch},
		{"last_switchover", switchoverText(ap.LastSwitchover)}, {"pending_switchover", pending},
		{"uuid", ap.UUID}, {"created_at", timeText(ap.CreatedAt)},
	}
}

// switchoverText is "edge-01 → edge-02 in 312 ms (failure, epoch 7, 2026-…)", "" for none.
func switchoverText(sw *apitype.AppSwitchover) string {
	if sw == nil {
		return ""
	}
	from := sw.From
	if from == "" {
		from = "(none)"
	}
	return fmt.Sprintf("%s → %s in %d ms (%s, epoch %d, %s)", from, sw.To, sw.DurationMillis, sw.Reason, sw.Epoch, timeText(sw.At))
}

func (a *app) appCommands() []*cobra.Command {
	var (
		req       apitype.AppCreate
		heartbeat time.Duration
	)
	add := &cobra.Command{
		Use:   "app-add NAME --group GROUP --image IMAGE [--port PORT] [--vip ADDR/PREFIX] [--members HOST,...] [--witness HOST] [--heartbeat-time DURATION] [--probes N]",
		Short: "Add a redundant app that runs on edgeworkers of a group",
		Long: `Add a redundant app: it runs on the members named, in order of preference,
or on every edgeworker of the group; at least two, each with a management address.
The members' agents elect one active member among themselves. A group of two
members needs a witness to fail over: a third host that runs an agent but not
the app; with three or more members none is needed. A standby that hears nothing
from the active for the heartbeat time takes over; the active probes every member
--probes times in it, one datagram each, as VRRP's adverts; the witness answers
each, and a member whose answer is late is probed again at once.`,
		Example: "  hbctl app-add plc-bridge --group press --image registry.example/plc-bridge:1.4 --port 502 --vip 10.20.0.50/24\n" +
			"  hbctl app-add historian --group press --image historian:2 --members edge-02,edge-01 --witness edge-09\n" +
			"  hbctl app-add hmi --group press --image hmi:3 --port 8080 --heartbeat-time 300ms --probes 3",
		Args: a.args("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			if heartbeat%time.Millisecond != 0 || heartbeat < 0 {
				return &usageError{fmt.Errorf("--heartbeat-time %v: give a whole number of milliseconds, like 300ms or 1s", heartbeat)}
			}
			req.HeartbeatMillis = int(heartbeat / time.Millisecond)
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
	f.StringVar(&req.Witness, "witness", "", "a third host, running an agent but not the app, that breaks ties in a two-member group")
	f.StringVar(&req.Health, "health", "", "each member's health check of its copy: tcp, http or none (default: tcp with a port, none without)")
	f.StringVar(&req.HealthPath, "health-path", "", "the path an http health check gets (default /)")
	f.DurationVar(&heartbeat, "heartbeat-time", 0, "failure detection time: a standby that hears nothing from the active for this long takes over, 20ms to 1m (default 100ms)")
	f.IntVar(&req.Probes, "probes", 0, "how many times the active probes every member in a heartbeat time, 3 to 50 (default 4)")
	f.BoolVar(&req.LeanProbes, "lean-probes", false, "accepted for scripts that pass it; changes nothing (every app's probes are single datagrams)")
	f.MarkHidden("lean-probes")
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
			v := view{raw: apps, list: true, names: []string{"name", "group", "vip", "members", "active", "standbys", "epoch"}}
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
	switchover := a.switchoverCommand(complete)
	del := a.deleteCommand("app-delete NAME", "Delete an app (its members stay in the inventory)", "app %s", complete,
		func(ctx context.Context, c *client.Client, name string) error { return c.DeleteApp(ctx, name) })
	return []*cobra.Command{add, list, show, switchover, del}
}

// errNoSwitchover is returned when a followed switchover does not happen in time.
var errNoSwitchover = errors.New("the active member did not change")

func (a *app) switchoverCommand(complete func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)) *cobra.Command {
	var (
		to      string
		follow  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "app-switchover NAME [--to HOST] [--follow] [--follow-timeout 2m]",
		Short: "Move an app's active role to a standby (a planned switchover)",
		Long: `app-switchover asks an app's members to move its active role to the member
--to names, or to any healthy standby. The members carry it out among themselves;
app-show shows the new active member and how long the move took. It is refused
when the app has no healthy standby.

With --follow, hbctl waits until the active member changes, for at most
--follow-timeout.`,
		Example:           "  hbctl app-switchover plc-bridge --follow\n  hbctl app-switchover plc-bridge --to edge-02",
		Args:              a.args("NAME"),
		ValidArgsFunction: complete,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			ap, err := c.SwitchoverApp(ctx, args[0], to)
			if err != nil {
				return err
			}
			if follow {
				return a.followSwitchover(ctx, c, ap, to, timeout)
			}
			return a.show(view{raw: ap, rows: [][]field{appFields(ap)}})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the member to move the active role to, a healthy standby (default: any)")
	f.BoolVar(&follow, "follow", false, "wait until the active member changes")
	f.DurationVar(&timeout, "follow-timeout", 2*time.Minute, "how long --follow waits")
	return cmd
}

// followSwitchover shows an app until its active member is another than from's (or to, when
// given), then the app.
func (a *app) followSwitchover(ctx context.Context, c *client.Client, ap apitype.App, to string, timeout time.Duration) error {
	from := ap.Active
	done := func(ap apitype.App) bool {
		if to != "" {
			return ap.Active == to
		}
		return ap.Active != from
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ap, err := watch(wctx, a, ap, func(ap apitype.App) frame {
		line := fmt.Sprintf("%s: %s active (epoch %d), switching over", ap.Name, ap.Active, ap.Epoch)
		if p := ap.PendingSwitchover; p != nil {
			if w := awaitText(p, time.Now()); w != "" {
				line += ": " + w
			}
		}
		if done(ap) {
			line = fmt.Sprintf("%s: %s active (epoch %d): %s", ap.Name, ap.Active, ap.Epoch, switchoverText(ap.LastSwitchover))
		}
		return frame{bar: line, line: line, done: done(ap)}
	}, func(ctx context.Context) (apitype.App, error) { return c.GetApp(ctx, ap.Name) })
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%w within %s: app %s is still active on %s; hbctl app-show %s shows what its members report",
			errNoSwitchover, timeout, ap.Name, ap.Active, ap.Name)
	}
	if err != nil {
		return err
	}
	return a.show(view{raw: ap, rows: [][]field{appFields(ap)}})
}

// awaitText says whose heartbeat a pending switchover waits for, and when
// it is due: the controller reaches an agent only in its replies.
func awaitText(p *apitype.AppSwitchoverPlan, now time.Time) string {
	if p.Awaits == "" {
		return ""
	}
	if p.DueAt == nil {
		return "waiting for " + p.Awaits + "'s agent to heartbeat"
	}
	if d := p.DueAt.Sub(now).Round(time.Second); d > 0 {
		return fmt.Sprintf("waiting for %s's next heartbeat, due in %s (at %s)", p.Awaits, d, p.DueAt.Local().Format("15:04:05"))
	}
	return fmt.Sprintf("waiting for %s's next heartbeat, due %s ago", p.Awaits, now.Sub(*p.DueAt).Round(time.Second))
}
