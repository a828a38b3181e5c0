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

func lockFields(op apitype.LockOperation) []field {
	finished := ""
	if op.FinishedAt != nil {
		finished = timeText(*op.FinishedAt)
	}
	return []field{
		{"hostname", op.Host}, {"state", op.State}, {"pods", podsText(op)},
		{"pending", strings.Join(op.Pending, ",")}, {"message", op.Message},
		{"force", strconv.FormatBool(op.Force)}, {"timeout", op.Timeout},
		{"started_at", timeText(op.StartedAt)}, {"finished_at", finished},
		{"runner", op.Runner}, {"cancel_by", op.CancelBy},
	}
}

// podsText is "2/3 evicted".
func podsText(op apitype.LockOperation) string {
	return fmt.Sprintf("%d/%d evicted", op.PodsEvicted, op.PodsTotal)
}

// lockLine is a line of a followed lock: "edge-01: draining, 1/3 pods evicted; waiting for …".
func lockLine(op apitype.LockOperation) string {
	line := fmt.Sprintf("%s: %s, %d/%d pods evicted", op.Host, op.State, op.PodsEvicted, op.PodsTotal)
	if op.Message != "" {
		line += "; " + op.Message
	}
	return line
}

// errLockFailed is returned when a followed lock does not succeed, so hbctl exits non-zero.
var errLockFailed = errors.New("the host was not locked")

func (a *app) lockCommands() []*cobra.Command {
	var (
		force, noWait bool
		timeout       time.Duration
	)
	lock := &cobra.Command{
		Use:   "host-lock HOST [--force] [--drain-timeout 5m] [--no-wait]",
		Short: "Take a host out of service, draining its Kubernetes Node first",
		Long: `host-lock takes a host out of service: administrative locked, operational disabled.
When the host is a Kubernetes Node, the controller first drains it: it cordons the Node and
evicts its pods through the eviction API, honouring PodDisruptionBudgets, and waits until they
are gone. DaemonSet pods and static pods stay. Pods that no controller manages are refused,
as nothing would recreate them, unless --force evicts them too. A drain that does not end
within --drain-timeout (10s to 1h) fails: the Node is made schedulable again and the host stays
unlocked, and the message names the pods that stayed and why.

A host that is the active member of redundant apps has them moved first: the controller asks
for a planned switchover of each and waits, within --drain-timeout, until another member is
active. An app with no healthy standby is refused, unless --force, which stops it with the host.

hbctl shows the drain's progress until it ends, unless --no-wait.
host-unlock puts the host back in service.`,
		Example:           "  hbctl host-lock edge-01\n  hbctl host-lock edge-01 --force --drain-timeout 10m\n  hbctl host-unlock edge-01",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			op, err := c.LockHost(ctx, args[0], apitype.LockRequest{Force: force, Timeout: timeout.String()})
			if err != nil {
				return err
			}
			if noWait {
				return a.show(view{raw: op, rows: [][]field{lockFields(op)}})
			}
			return a.followLock(ctx, c, args[0], op)
		}),
	}
	lock.Flags().BoolVar(&force, "force", false, "evict pods that no controller manages too (nothing recreates them), and lock the active member of an app with no healthy standby")
	lock.Flags().DurationVar(&timeout, "drain-timeout", 5*time.Minute, "how long the drain may take before the lock fails, 10s to 1h")
	lock.Flags().BoolVar(&noWait, "no-wait", false, "return once the drain has started (host-lock-show follows it)")

	var follow bool
	show := &cobra.Command{
		Use:               "host-lock-show HOST [--follow]",
		Short:             "Show a host's latest lock and its drain",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			op, err := c.LockOperation(ctx, args[0])
			if err != nil {
				return err
			}
			if follow {
				return a.followLock(ctx, c, args[0], op)
			}
			return a.show(view{raw: op, rows: [][]field{lockFields(op)}})
		}),
	}
	show.Flags().BoolVar(&follow, "follow", false, "show the drain's progress until it ends")

	cancel := &cobra.Command{
		Use:   "host-lock-cancel HOST",
		Short: "Stop a running host-lock; the host stays unlocked",
		Long: `host-lock-cancel stops a lock that is still moving the host's apps or draining its Node,
for example one a PodDisruptionBudget holds up: the Node is made schedulable again, the host stays
unlocked and the apps moved so far stay where they are. host-unlock of a host being locked does
the same.`,
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			op, err := c.CancelLock(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: op, rows: [][]field{lockFields(op)}})
		}),
	}

	unlock := &cobra.Command{
		Use:   "host-unlock HOST",
		Short: "Put a locked host back in service, or cancel its running lock",
		Long: `host-unlock makes the host's Kubernetes Node schedulable again, when it has one, and
the host unlocked and enabled. A host whose lock is still running has that lock cancelled
(as host-lock-cancel does) and stays unlocked. A host that is not locked is refused.`,
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			h, err := c.UnlockHost(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(hostView(h))
		}),
	}
	return []*cobra.Command{lock, show, cancel, unlock}
}

// followLock shows a lock's drain until it ends, then the lock. A lock that fails makes hbctl
// fail.
func (a *app) followLock(ctx context.Context, c *client.Client, host string, op apitype.LockOperation) error {
	op, err := watch(ctx, a, op, func(op apitype.LockOperation) frame {
		return frame{
			bar: fmt.Sprintf("%s %s %-8s %s %s", op.Host, progressBar(op.PodsEvicted, op.PodsTotal, 30),
				op.State, podsText(op), truncate(op.Message, 60)),
			line: lockLine(op),
			done: op.State != "draining",
		}
	}, func(ctx context.Context) (apitype.LockOperation, error) { return c.LockOperation(ctx, host) })
	if err != nil {
		return err
	}
	if err := a.show(view{raw: op, rows: [][]field{lockFields(op)}}); err != nil {
		return err
	}
	if op.State != "locked" {
		return fmt.Errorf("%w: host %s: %s", errLockFailed, op.Host, op.Message)
	}
	return nil
}
