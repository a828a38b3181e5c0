package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/testbed/provisiontest"
)

// provisionWaiting is the task a job shows once its playbook has ended and the controller waits
// for the host's Node to be Ready (internal/provision).
const provisionWaiting = "Wait for the Node to be Ready"

// provisionPoll is how often the benchmark reads a job's progress. It bounds the error of the
// split between playbook and wait for Ready, not of the times to Ready: those end at the job's
// finished_at.
const provisionPoll = 250 * time.Millisecond

// BenchmarkProvision measures host-provision as an operator meets it: the time from
// POST /v1/hosts/{host}/provision to the job's success, which the controller declares once the
// playbook has joined the host and its Node is Ready (and labelled). Each iteration brings up a
// fresh test bed (hosts without Kubernetes) and a controller for it, not timed, then POSTs the
// provisioning of all its hosts at once and waits for every job to end; the bed is taken down
// before the next iteration. hosts=1 provisions one host, hosts=4 four at once (the controller
// runs up to 4 jobs at once).
//
// Metrics, means over the iterations: s/all-ready, from the first POST to the last job's
// finished_at; s/host-ready, from a host's POST to its job's finished_at, over all hosts;
// s/playbook, from the job's start to the end of its playbook (seen by polling every 250 ms);
// s/ready-wait, from there to the job's end (the wait for the Node and its labels); s/node-ready,
// from a host's POST to its Node's Ready condition as the API server has it (whole seconds).
// ns/op is the timed part of an iteration: the POSTs and the polling until the last job ended.
// It needs root and the test bed (HB_E2E=1, see test/bed/README.md). Run it with -benchtime 1x
// and a -timeout of 30m or more.
func BenchmarkProvision(b *testing.B) {
	requireBed(b)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchProvision(b, n) })
	}
}

// provisionRun is what one host's job did, as the benchmark saw it.
type provisionRun struct {
	host        string
	post        time.Time // just before the POST
	job         apitype.ProvisionJob
	playbookEnd time.Time // when the job was first seen waiting for the Node, or its end
	tasks       []seenTask
}

// seenTask is a task of a job's playbook and when the job was first seen running it.
type seenTask struct {
	name string
	at   time.Time
}

func (r *provisionRun) observe(j apitype.ProvisionJob) {
	now := time.Now()
	if j.State == provision.StateRunning && j.Task != "" &&
		(len(r.tasks) == 0 || r.tasks[len(r.tasks)-1].name != j.Task) {
		r.tasks = append(r.tasks, seenTask{j.Task, now})
	}
	if j.State == provision.StateRunning && j.Task == provisionWaiting && r.playbookEnd.IsZero() {
		r.playbookEnd = now
	}
}

func benchProvision(b *testing.B, n int) {
	var all, host, playbook, readyWait, nodeReady time.Duration
	taskTime := map[string]time.Duration{}
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		pb := provisiontest.Start(b, ctx, n, "")
		runs := make([]provisionRun, n)
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for k, h := range pb.Bed.Hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &runs[k]
				r.host, r.post = h.Name, time.Now()
				if _, err := pb.Client.ProvisionHost(ctx, h.Name, apitype.ProvisionRequest{}); err != nil {
					b.Errorf("host-provision %s: %v", h.Name, err)
					return
				}
				r.job = provisiontest.Watch(b, ctx, pb.Client, h.Name, provisionPoll, r.observe)
			}()
		}
		wg.Wait()
		b.StopTimer()
		if b.Failed() {
			b.FailNow()
		}

		var last time.Time
		for _, r := range runs {
			j := r.job
			if j.State != provision.StateSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
				b.Fatalf("%s: job %+v\n%s", r.host, j, provisiontest.Log(b, ctx, pb.Client, r.host))
			}
			if r.playbookEnd.IsZero() || r.playbookEnd.After(*j.FinishedAt) {
				// The wait for the Node took less than a poll.
				r.playbookEnd = *j.FinishedAt
			}
			registered, ready := nodeTimes(b, ctx, pb, r.host)
			if j.FinishedAt.After(last) {
				last = *j.FinishedAt
			}
			host += j.FinishedAt.Sub(r.post)
			playbook += r.playbookEnd.Sub(*j.StartedAt)
			readyWait += j.FinishedAt.Sub(r.playbookEnd)
			nodeReady += ready.Sub(r.post)
			for k, t := range r.tasks {
				end := r.playbookEnd
				if k+1 < len(r.tasks) {
					end = r.tasks[k+1].at
				}
				if t.name != provisionWaiting {
					taskTime[t.name] += end.Sub(t.at)
				}
			}
			b.Logf("%s: job succeeded %.1f s after its POST: started after %.2f s, playbook %.1f s (%d tasks, %d changed), then %.1f s to the end; "+
				"Node registered after %.0f s, Ready after %.0f s (whole seconds)",
				r.host, j.FinishedAt.Sub(r.post).Seconds(), j.StartedAt.Sub(r.post).Seconds(),
				r.playbookEnd.Sub(*j.StartedAt).Seconds(), j.TasksDone, j.Changed, j.FinishedAt.Sub(r.playbookEnd).Seconds(),
				registered.Sub(r.post).Seconds(), ready.Sub(r.post).Seconds())
		}
		all += last.Sub(start)
		load, _ := os.ReadFile("/proc/loadavg")
		b.Logf("%d host(s): all succeeded %.1f s after the first POST; loadavg %s", n, last.Sub(start).Seconds(),
			strings.TrimSpace(string(load)))

		if err := pb.Down(ctx); err != nil {
			b.Errorf("taking the test bed down: %v", err)
		}
		cancel()
	}

	hosts := float64(b.N * n)
	b.ReportMetric(all.Seconds()/float64(b.N), "s/all-ready")
	b.ReportMetric(host.Seconds()/hosts, "s/host-ready")
	b.ReportMetric(playbook.Seconds()/hosts, "s/playbook")
	b.ReportMetric(readyWait.Seconds()/hosts, "s/ready-wait")
	b.ReportMetric(nodeReady.Seconds()/hosts, "s/node-ready")

	type task struct {
		name string
		d    time.Duration
	}
	var tasks []task
	for name, d := range taskTime {
		tasks = append(tasks, task{name, d})
	}
	slices.SortFunc(tasks, func(x, y task) int { return cmp.Compare(y.d, x.d) })
	var top []string
	for _, t := range tasks[:min(6, len(tasks))] {
		top = append(top, fmt.Sprintf("%.1f s %s", t.d.Seconds()/hosts, t.name))
	}
	// One line: a benchmark's log is cut after 10 lines.
	b.Logf("slowest playbook tasks, mean per host (seen every %v): %s", provisionPoll, strings.Join(top, "; "))
}

// nodeTimes returns when host's Node was created (the kubelet registered it) and when its Ready
// condition last became true, as the API server has them: in whole seconds.
func nodeTimes(tb testing.TB, ctx context.Context, pb *provisiontest.Bed, host string) (registered, ready time.Time) {
	tb.Helper()
	var node struct {
		Metadata struct {
			CreationTimestamp time.Time `json:"creationTimestamp"`
		} `json:"metadata"`
		Status struct {
			Conditions []struct {
				Type               string    `json:"type"`
				Status             string    `json:"status"`
				LastTransitionTime time.Time `json:"lastTransitionTime"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := pb.Bed.ControlPlane.GetJSON(ctx, &node, "node", host); err != nil {
		tb.Fatal(err)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			return node.Metadata.CreationTimestamp, c.LastTransitionTime
		}
	}
	tb.Fatalf("node %s is not Ready: %+v", host, node.Status.Conditions)
	return
}
