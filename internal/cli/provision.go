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

func jobFields(j apitype.ProvisionJob) []field {
	tp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return timeText(*t)
	}
	return []field{
		{"hostname", j.Hostname}, {"job", strconv.FormatInt(j.ID, 10)}, {"state", j.State},
		{"progress", progressText(j)}, {"changed", strconv.Itoa(j.Changed)}, {"task", j.Task},
		{"message", j.Message}, {"reinstall", strconv.FormatBool(j.Reinstall)}, {"created_by", j.CreatedBy},
		{"created_at", timeText(j.CreatedAt)}, {"started_at", tp(j.StartedAt)}, {"finished_at", tp(j.FinishedAt)},
		{"runner", j.Runner}, {"cancel_by", j.CancelBy},
	}
}

// progressText is "12/57 tasks (21%)".
func progressText(j apitype.ProvisionJob) string {
	if j.TasksTotal == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d tasks (%d%%)", j.TasksDone, j.TasksTotal, 100*j.TasksDone/j.TasksTotal)
}

// progressBar is a bar of width cells for done of total.
func progressBar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	n := min(width*done/total, width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// errJobFailed is returned when a followed job does not succeed, so hbctl exits non-zero.
var errJobFailed = errors.New("provisioning did not succeed")

func (a *app) provisionCommands() []*cobra.Command {
	var follow, reinstall bool
	start := &cobra.Command{
		Use:   "host-provision HOST [--follow] [--reinstall]",
		Short: "Join an edgeworker to the Kubernetes cluster",
		Long: `host-provision starts a job on the controller that runs the edgeworker playbook
against the host's management address over SSH: containerd, kubelet and kubeadm at the
cluster's version, the kernel settings Kubernetes needs, and kubeadm join. The host is
provisioned once its Node is Ready. Running it again is safe: a provisioned host is
left as it is. With --follow, hbctl shows the job's progress until it ends.`,
		Example:           "  hbctl host-provision edge-01 --follow\n  hbctl provision-log edge-01",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			j, err := c.ProvisionHost(ctx, args[0], apitype.ProvisionRequest{Reinstall: reinstall})
			if err != nil {
				return err
			}
			if follow {
				return a.follow(ctx, c, args[0], j)
			}
			return a.show(view{raw: j, rows: [][]field{jobFields(j)}})
		}),
	}
	start.Flags().BoolVar(&follow, "follow", false, "show the job's progress until it ends")
	start.Flags().BoolVar(&reinstall, "reinstall", false, "replace a kubelet the version skew policy forbids instead of refusing the host")

	var showFollow bool
	show := &cobra.Command{
		Use:               "host-provision-show HOST [--follow]",
		Short:             "Show a host's latest provisioning job",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			j, err := c.ProvisionJob(ctx, args[0])
			if err != nil {
				return err
			}
			if showFollow {
				return a.follow(ctx, c, args[0], j)
			}
			return a.show(view{raw: j, rows: [][]field{jobFields(j)}})
		}),
	}
	show.Flags().BoolVar(&showFollow, "follow", false, "show the job's progress until it ends")

	cancel := &cobra.Command{
		Use:               "host-provision-cancel HOST",
		Short:             "Cancel a host's queued or running provisioning job",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			j, err := c.CancelProvision(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: j, rows: [][]field{jobFields(j)}})
		}),
	}

	var logFollow bool
	logCmd := &cobra.Command{
		Use:               "provision-log HOST [--follow]",
		Short:             "Print the log of a host's latest provisioning job",
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			var after int64
			for {
				l, err := c.ProvisionLog(ctx, args[0], after)
				if err != nil {
					return err
				}
				for _, ch := range l.Chunks {
					fmt.Fprint(a.io.Out, escapeLines(ch.Text))
				}
				after = l.Next
				ended := l.State != "queued" && l.State != "running"
				if !logFollow || (ended && len(l.Chunks) == 0) {
					return nil
				}
				if len(l.Chunks) == 0 {
					if err := sleep(ctx, time.Second); err != nil {
						return err
					}
				}
			}
		}),
	}
	logCmd.Flags().BoolVar(&logFollow, "follow", false, "keep printing until the job ends")
	return []*cobra.Command{start, show, cancel, logCmd}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// follow shows a job's progress until it ends, then the job. A job that does not succeed
// makes hbctl fail.
func (a *app) follow(ctx context.Context, c *client.Client, host string, j apitype.ProvisionJob) error {
	j, err := watch(ctx, a, j, func(j apitype.ProvisionJob) frame {
		return frame{
			bar:  fmt.Sprintf("%s %s %-9s %s", j.Hostname, progressBar(j.TasksDone, j.TasksTotal, 30), j.State, truncate(j.Task, 60)),
			line: fmt.Sprintf("%s: %s %s", j.Hostname, progressText(j), j.Task),
			done: j.State != "queued" && j.State != "running",
		}
	}, func(ctx context.Context) (apitype.ProvisionJob, error) { return c.ProvisionJob(ctx, host) })
	if err != nil {
		return err
	}
	if err := a.show(view{raw: j, rows: [][]field{jobFields(j)}}); err != nil {
		return err
	}
	if j.State != "succeeded" {
		where := fmt.Sprintf("at %q", j.Task)
		if j.Task == "" { // a job the controller ended before it started
			where = "before its first step"
		}
		return fmt.Errorf("%w: host %s %s %s: %s (hbctl provision-log %s has the whole log)", errJobFailed, j.Hostname, j.State, where, j.Message, j.Hostname)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
