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
	var sum provisionFigures
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		sum.add(provisionOnce(b, n, func(on bool) {
			if on {
				b.StartTimer()
			} else {
				b.StopTimer()
			}
		}))
	}

	hosts := float64(b.N * n)
	b.ReportMetric(sum.all.Seconds()/float64(b.N), "s/all-ready")
	b.ReportMetric(sum.host.Seconds()/hosts, "s/host-ready")
	b.ReportMetric(sum.playbook.Seconds()/hosts, "s/playbook")
	b.ReportMetric(sum.readyWait.Seconds()/hosts, "s/ready-wait")
	b.ReportMetric(sum.nodeReady.Seconds()/hosts, "s/node-ready")
	// One line: a benchmark's log is cut after 10 lines.
	b.Logf("slowest playbook tasks, mean per host (seen every %v): %s", provisionPoll, sum.slowest(6, hosts))
}

// TestProvisionBenchSetup runs one iteration of BenchmarkProvision with
// one host, so that CI sees it work. It is skipped and fails as the
// end-to-end tests are (requireBed).
func TestProvisionBenchSetup(t *testing.T) {
	requireBed(t)
	t.Parallel()
	f := provisionOnce(t, 1, nil)
	t.Logf("one host: Ready %.1f s after the POST, playbook %.1f s, then %.2f s; Node Ready after %.0f s; slowest tasks: %s",
		f.host.Seconds(), f.playbook.Seconds(), f.readyWait.Seconds(), f.nodeReady.Seconds(), f.slowest(3, 1))
	if f.all <= 0 || f.host < f.playbook || f.playbook <= 0 || f.readyWait < 0 {
		t.Errorf("all Ready after %v, the host after %v, playbook %v, then %v: want the host's time above 0 and at least its playbook's, the rest not negative",
			f.all, f.host, f.playbook, f.readyWait)
	}
	if len(f.taskTime) == 0 {
		t.Errorf("no playbook task seen while polling the job every %v", provisionPoll)
	}
}

// provisionFigures are the times of one or more iterations of
// BenchmarkProvision, summed: all is per iteration, the others per host.
type provisionFigures struct {
	all, host, playbook, readyWait, nodeReady time.Duration
	taskTime                                  map[string]time.Duration
}

func (f *provisionFigures) add(g provisionFigures) {
	f.all += g.all
	f.host += g.host
	f.playbook += g.playbook
	f.readyWait += g.readyWait
	f.nodeReady += g.nodeReady
	if f.taskTime == nil {
		f.taskTime = map[string]time.Duration{}
	}
	for name, d := range g.taskTime {
		f.taskTime[name] += d
	}
}

// slowest lists the n slowest playbook tasks, their time divided by hosts.
func (f provisionFigures) slowest(n int, hosts float64) string {
	type task struct {
		name string
		d    time.Duration
	}
	var tasks []task
	for name, d := range f.taskTime {
		tasks = append(tasks, task{name, d})
	}
	slices.SortFunc(tasks, func(x, y task) int { return cmp.Compare(y.d, x.d) })
	var top []string
	for _, t := range tasks[:min(n, len(tasks))] {
		top = append(top, fmt.Sprintf("%.1f s %s", t.d.Seconds()/hosts, t.name))
	}
	return strings.Join(top, "; ")
}

// provisionOnce is one iteration of BenchmarkProvision: it brings up a
// bed of n hosts and a controller for it, provisions every host at once,
// waits for every job to end, and takes the bed down. timer, when not
// nil, is told when the timed part starts (true) and ends (false).
func provisionOnce(tb testing.TB, n int, timer func(on bool)) provisionFigures {
	tb.Helper()
	if timer == nil {
		timer = func(bool) {}
	}
	f := provisionFigures{taskTime: map[string]time.Duration{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pb := provisiontest.Start(tb, ctx, n, "")
	runs := make([]provisionRun, n)
	var wg sync.WaitGroup
	timer(true)
	start := time.Now()
	for k, h := range pb.Bed.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runs[k]
			r.host, r.post = h.Name, time.Now()
			if _, err := pb.Client.ProvisionHost(ctx, h.Name, apitype.ProvisionRequest{}); err != nil {
				tb.Errorf("host-provision %s: %v", h.Name, err)
				return
			}
			r.job = provisiontest.Watch(tb, ctx, pb.Client, h.Name, provisionPoll, r.observe)
		}()
	}
	wg.Wait()
	timer(false)
	if tb.Failed() {
		tb.FailNow()
	}

	var last time.Time
	for _, r := range runs {
		j := r.job
		if j.State != provision.StateSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
			tb.Fatalf("%s: job %+v\n%s", r.host, j, provisiontest.Log(tb, ctx, pb.Client, r.host))
		}
		if r.playbookEnd.IsZero() || r.playbookEnd.After(*j.FinishedAt) {
			// The wait for the Node took less than a poll.
			r.playbookEnd = *j.FinishedAt
		}
		registered, ready := nodeTimes(tb, ctx, pb, r.host)
		if j.FinishedAt.After(last) {
			last = *j.FinishedAt
		}
		f.host += j.FinishedAt.Sub(r.post)
		f.playbook += r.playbookEnd.Sub(*j.StartedAt)
		f.readyWait += j.FinishedAt.Sub(r.playbookEnd)
		f.nodeReady += ready.Sub(r.post)
		for k, t := range r.tasks {
			end := r.playbookEnd
			if k+1 < len(r.tasks) {
				end = r.tasks[k+1].at
			}
			if t.name != provisionWaiting {
				f.taskTime[t.name] += end.Sub(t.at)
			}
		}
		tb.Logf("%s: job succeeded %.1f s after its POST: started after %.2f s, playbook %.1f s (%d tasks, %d changed), then %.1f s to the end; "+
			"Node registered after %.0f s, Ready after %.0f s (whole seconds)",
			r.host, j.FinishedAt.Sub(r.post).Seconds(), j.StartedAt.Sub(r.post).Seconds(),
			r.playbookEnd.Sub(*j.StartedAt).Seconds(), j.TasksDone, j.Changed, j.FinishedAt.Sub(r.playbookEnd).Seconds(),
			registered.Sub(r.post).Seconds(), ready.Sub(r.post).Seconds())
	}
	f.all = last.Sub(start)
	load, _ := os.ReadFile("/proc/loadavg")
	tb.Logf("%d host(s): all succeeded %.1f s after the first POST; loadavg %s", n, f.all.Seconds(),
		strings.TrimSpace(string(load)))

	if err := pb.Down(ctx); err != nil {
		tb.Errorf("taking the test bed down: %v", err)
	}
	return f
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
